// Why a bundle was refused; each reason has its own plain message.
export type BundleErrorCode =
  | 'not-a-bundle' // wrong magic: some other file
  | 'truncated' // shorter than its own header says
  | 'garbled' // header unreadable or malformed
  | 'tampered' // authentication failed: altered after sealing
  | 'wrong-org' // sealed for another organization
  | 'wrong-key' // the data key was wrapped under another key
  | 'unsigned' // wrapped with a public-key algorithm (Key Vault) but carries no signature
  | 'bad-signature' // its signature is not a valid one by the organization's signing key
  | 'rollback' // older than the version already running
  | 'key-unavailable' // the key store refused or could not be reached
  | 'unusable' // valid, but the node cannot run it (its engine refuses the templates)
  | 'invalid'; // bad input to seal (file names, options)

export class BundleError extends Error {
  constructor(
    readonly code: BundleErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BundleError';
  }
}
