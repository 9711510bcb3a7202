import { mlpModel } from '../tools/onnx';
import { tarGz } from '../tools/tar';

/**
 * The demo model: a small MLP over 4 features into 3 class probabilities, with fixed weights made
 * by the project's own code (no download). `demo/model/demo.onnx` is this model's bytes, committed
 * so that the demo app deploys a real file; `predict` is its plain-JS reference.
 */
export const demoModel = () => mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 2026, label: true });

export const DEMO_MODEL_NAME = 'demo';
export const DEMO_MODEL_FILE = `${__dirname}/model/demo.onnx`;

/** The hooks of the Hooks demo stack: named features in, class names out, a log line per prediction after the answer. */
export const DEMO_HOOKS_FILE = `${__dirname}/hooks/demo-hooks.ts`;

/** A request the demo sends, and the README's curl line repeats. */
export const DEMO_FEATURES = [0.5, -1.2, 3.3, 0.7];

/**
 * The demo model as a SageMaker `model.tar.gz` for NVIDIA Triton (which speaks the same protocol):
 * a model repository with the ONNX file and its configuration. Committed beside the model, made
 * by `scripts/make-demo-model.ts`.
 */
export const DEMO_MODEL_ARCHIVE = `${__dirname}/model/demo-triton.tar.gz`;

export const demoTritonArchive = () =>
  tarGz([
    { path: `${DEMO_MODEL_NAME}/config.pbtxt`, bytes: Buffer.from(TRITON_CONFIG) },
    { path: `${DEMO_MODEL_NAME}/1/model.onnx`, bytes: demoModel().bytes },
  ]);

const TRITON_CONFIG = `name: "${DEMO_MODEL_NAME}"
backend: "onnxruntime"
max_batch_size: 0
input [ { name: "input", data_type: TYPE_FP32, dims: [ -1, 4 ] } ]
output [
  { name: "probabilities", data_type: TYPE_FP32, dims: [ -1, 3 ] },
  { name: "label", data_type: TYPE_INT64, dims: [ -1 ] }
]
`;
