/**
 * The version an endpoint reports for its model when none is given: the first 16 hex digits of the
 * model's identity (its content hash). `serve` reports the same for the same file.
 */
export function modelVersionFromIdentity(identity: string): string {
  return identity.slice(0, 16);
}
