/**
 * The Open Inference Protocol's tensor datatypes. The constructs read them from a model's
 * signature at synth; the handler converts request data by them.
 */
export enum TensorDatatype {
  BOOL = 'BOOL',
  UINT8 = 'UINT8',
  UINT16 = 'UINT16',
  UINT32 = 'UINT32',
  UINT64 = 'UINT64',
  INT8 = 'INT8',
  INT16 = 'INT16',
  INT32 = 'INT32',
  INT64 = 'INT64',
  FP16 = 'FP16',
  FP32 = 'FP32',
  FP64 = 'FP64',
  BYTES = 'BYTES',
  /** A model may declare it, but onnxruntime-node cannot feed it: requests are not accepted for it. */
  BF16 = 'BF16',
}

/** The datatypes the handler runs: all but BF16. */
export type Datatype = Exclude<`${TensorDatatype}`, 'BF16'>;

/** The datatypes a request may name, in the protocol's order. */
export const DATATYPES = Object.values(TensorDatatype).filter((d) => d !== TensorDatatype.BF16) as readonly Datatype[];
