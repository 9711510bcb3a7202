import { UnscopedValidationError, ValidationError } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/*
 * aws-cdk-lib's own validation errors, so that `cdk synth` reports a misused construct as it reports
 * its own: the message, then the path of the construct that refused its props. Their constructors
 * take a name that aws-cdk-lib types as a literal-only string; ours are literals too.
 */
const NAME = 'ValidationError' as ConstructorParameters<typeof ValidationError>[0];

/** An error about `scope`'s props: the message says which prop, what was given and the limit. */
export function validationError(scope: IConstruct, message: string): Error {
  return new ValidationError(NAME, message, scope);
}

/** The same, for a value checked before any construct exists (a static factory's argument). */
export function unscopedValidationError(message: string): Error {
  return new UnscopedValidationError(NAME, message);
}
