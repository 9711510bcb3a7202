/**
 * The Open Inference Protocol's tensor datatypes. The constructs read them from a model's
 * signature at synth; the handler converts request data by them.
 */
export enum TensorDatatype {
  /** Booleans, one byte each. */
  BOOL = 'BOOL',
  /** 8-bit unsigned integers. */
  UINT8 = 'UINT8',
  /** 16-bit unsigned integers. */
  UINT16 = 'UINT16',
  /** 32-bit unsigned integers. */
  UINT32 = 'UINT32',
  /** 64-bit unsigned integers. */
  UINT64 = 'UINT64',
  /** 8-bit signed integers. */
  INT8 = 'INT8',
  /** 16-bit signed integers. */
  INT16 = 'INT16',
  /** 32-bit signed integers. */
  INT32 = 'INT32',
  /** 64-bit signed integers. */
  INT64 = 'INT64',
  /** 16-bit IEEE floats. */
  FP16 = 'FP16',
  /** 32-bit IEEE floats. */
  FP32 = 'FP32',
  /** 64-bit IEEE floats. */
  FP64 = 'FP64',
  /** Byte strings (UTF-8 text in JSON). */
  BYTES = 'BYTES',
  /** A model may declare it, but onnxruntime-node cannot feed it: requests are not accepted for it. */
  BF16 = 'BF16',
}

/** The datatypes the handler runs: all but BF16. */
export type Datatype = Exclude<`${TensorDatatype}`, 'BF16'>;

/** The datatypes a request may name, in the protocol's order. */
export const DATATYPES = Object.values(TensorDatatype).filter((d) => d !== TensorDatatype.BF16) as readonly Datatype[];
