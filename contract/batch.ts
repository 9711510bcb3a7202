/**
 * What the batch state machine (lib/batch/), the inference handler (handlers/core/batch/) and the
 * local `batch` command agree on: the events a batch sends the function, what the function answers,
 * and the files a batch job writes.
 */

/** `BatchInput.kind` of a Distributed Map batch the library's state machine sends the function. */
export const BATCH_KIND = 'cdk-serverless-inference.batch';

/** `kind` of the event of the state machine's last step, which assembles the job's output. */
export const BATCH_ASSEMBLE_KIND = 'cdk-serverless-inference.batch-assemble';

/**
 * One item of a batch, as the Distributed Map's ItemSelector builds it: the item's position in the
 * input (`$$.Map.Item.Index`, from 0) and the item itself (`$$.Map.Item.Value`): a line of a JSON
 * Lines file (an Open Inference Protocol request, or a plain row), or a CSV row (an object of
 * column name to text).
 */
export interface BatchItem {
  readonly index: number;
  readonly value: unknown;
}

/** The fixed part of every batch (`BatchInput`): where the function writes its rows. */
export interface BatchInput {
  readonly kind: typeof BATCH_KIND;
  /** The bucket of the output; absent: the rows come back in the answer (the local `batch` command). */
  readonly outputBucket?: string;
  /** Where this job's output goes, ending with `/`. */
  readonly outputPrefix?: string;
  /** Whether each output line carries its input (SageMaker Batch Transform's `JoinSource: Input`). */
  readonly joinInput?: boolean;
}

/** The event the function gets from the Distributed Map: ItemBatcher's `{BatchInput, Items}`. */
export interface BatchEvent {
  readonly BatchInput: BatchInput;
  readonly Items: readonly BatchItem[];
}

/** What the function answers a batch: short, since the ResultWriter writes it once per batch. */
export interface BatchAnswer {
  /** The key of the part file the rows were written to; absent when they come back as `lines`. */
  readonly part?: string;
  readonly items: number;
  readonly failed: number;
  /** Number of `session.run` calls the batch took. */
  readonly runs: number;
  /** The output lines (JSON text, one per item in the order of the items), when no bucket was named. */
  readonly lines?: readonly string[];
}

/** The assembling step's event. */
export interface BatchAssembleEvent {
  readonly kind: typeof BATCH_ASSEMBLE_KIND;
  readonly outputBucket: string;
  readonly outputPrefix: string;
  /** The input the job read, for the manifest. */
  readonly input?: { readonly bucket?: string; readonly key?: string };
  /** The Distributed Map's ResultWriterDetails (`{Bucket, Key}` of its manifest.json), to find the batches that failed as a whole. */
  readonly resultWriter?: { readonly Bucket: string; readonly Key: string };
  /** When the execution started (`$$.Execution.StartTime`). */
  readonly startedAt?: string;
  readonly executionId?: string;
}

/** The files of a job, under its output prefix. */
export const BATCH_FILES = {
  /** One line per input line, in the input's order: the answer, or the error for a failed item. */
  RESULTS: 'results.jsonl',
  /** One line per failed item: its index, its id, the status and the reason. */
  FAILURES: 'failures.jsonl',
  /** Counts and timing (BatchManifest). */
  MANIFEST: 'manifest.json',
  /** The rows of each batch, keyed by the index of its first item; removed once assembled. */
  PARTS: 'parts/',
} as const;

/** The job's manifest.json. */
export interface BatchManifest {
  readonly input?: { readonly bucket?: string; readonly key?: string };
  readonly output: { readonly bucket?: string; readonly results: string; readonly failures: string };
  readonly items: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Items of batches whose invocation failed as a whole (after its retries), counted in `failed`. */
  readonly failedInBatches: number;
  readonly startedAt?: string;
  readonly finishedAt: string;
  readonly seconds?: number;
  readonly executionId?: string;
}

/** The key of a batch's part file: its first item's index, zero-padded so that keys sort in order. */
export function batchPartKey(outputPrefix: string, firstIndex: number): string {
  return `${outputPrefix}${BATCH_FILES.PARTS}${String(firstIndex).padStart(12, '0')}.jsonl`;
}
