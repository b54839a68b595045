// Walking a zod schema and its data along an issue's path, for messages in an
// administrator's words (the keys a mapping allows, what a missing setting is
// for). Uses zod's public definitions only. Shared by the org files and the
// relay config.
import type { z } from 'zod';

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; in?: z.ZodType; element?: z.ZodType; valueType?: z.ZodType };
const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The schemas a value passes through, outermost first: optional, default, pipe… then the type itself. */
export function schemaLayers(schema: z.ZodType): z.ZodType[] {
  const out = [schema];
  for (let current = schema; out.length < 20; ) {
    const def = defOf(current);
    const next = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
    if (!next) break;
    out.push((current = next));
  }
  return out;
}

/** The schema of the value at `path` (with its wrappers), when `schema` has one there. */
export function schemaAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): z.ZodType | undefined {
  let current = schema;
  for (const segment of path) {
    const def = defOf(schemaLayers(current).at(-1)!);
    if (def.type === 'object' && def.shape && typeof segment === 'string' && Object.hasOwn(def.shape, segment)) current = def.shape[segment];
    else if (def.type === 'array' && def.element && typeof segment === 'number') current = def.element;
    else if (def.type === 'record' && def.valueType) current = def.valueType;
    else return undefined;
  }
  return current;
}

/** The keys the mapping at `path` allows (none when there is no mapping there). */
export function allowedKeysAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  const at = schemaAt(schema, path);
  const def = at && defOf(schemaLayers(at).at(-1)!);
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** The data at `path`, or undefined where the path leaves it. */
export function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = data;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}
