// The engine's contract: one message in, the same message with the right
// signature out (or unchanged, with the reason). Used by `signet sign` and by
// the relay; knows nothing of SMTP sessions.
import type { Readable } from 'node:stream';
import type { MessageKind, PartReport } from '../mime/types';

export interface Envelope {
  /** MAIL FROM address (the sender used to find the user). */
  mailFrom: string;
  /** RCPT TO addresses. */
  rcptTo: string[];
}

export type PassReason =
  | 'already-processed'
  | 'smime'
  | 'pgp'
  | 'report'
  | 'calendar'
  | 'auto-reply'
  | 'null-sender'
  | 'tnef'
  | 'no-body'
  /**
   * The body part to edit names its Content-Type, Content-Transfer-Encoding or
   * Content-Disposition twice with different values: readers disagree on how
   * to decode it, so it is left as it came (EngineResult.ambiguousParts).
   */
  | 'ambiguous-part'
  | 'too-large'
  | 'no-rule'
  | 'no-signature'
  | 'in-thread'
  | 'unknown-sender'
  /** A template or add-on failed while rendering for this sender (TemplateErrorReport says where). */
  | 'template-error'
  /** The relay's passThrough switch: no engine, only the stamp. */
  | 'pass-through';

/** Where a template failed for one sender. */
export interface TemplateErrorReport {
  /** `file:line` of the template: safe to log. */
  where: string;
  /** The error's class (TypeError, SyntaxError…): safe to log. */
  errorName: string;
  /** The whole error message: it may quote a directory value, never log it. */
  message: string;
}

export interface EngineResult {
  outcome: 'signed' | 'passed';
  reason?: PassReason;
  orgId: string;
  configVersion: string;
  kind?: MessageKind;
  ruleIds: string[];
  templateId?: string;
  addons: string[];
  parts: PartReport[];
  /** Main body parts left unchanged because their header fields can be read two ways (when any). */
  ambiguousParts?: Array<PartReport['contentType']>;
  bytesIn: number;
  bytesOut: number;
  /** Duration of the engine's own work (decision + rendering + surgery), seconds. */
  engineSeconds: number;
  /**
   * Why each rule did or did not match (for `--explain`). Its reasons may name
   * recipients' domains: never log it.
   */
  trace?: Array<{ ruleId: string; matched: boolean; reasons: string[] }>;
  /** Set with the reason `template-error`. */
  templateError?: TemplateErrorReport;
}

export interface EngineRun {
  output: Readable;
  result: Promise<EngineResult>;
}

/** One organization's engine for one config version; templates and rules are compiled once when it is created. */
export interface Engine {
  readonly orgId: string;
  readonly configVersion: string;
  /** Streams one message through: output is the message to relay; result resolves when output has ended. */
  process(input: Readable, envelope: Envelope): EngineRun;
}
