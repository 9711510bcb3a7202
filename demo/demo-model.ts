import { mlpModel } from '../tools/onnx';

/**
 * The demo model: a small MLP over 4 features into 3 class probabilities, with fixed weights made
 * by the project's own code (no download). `demo/model/demo.onnx` is this model's bytes, committed
 * so that the demo app deploys a real file; `predict` is its plain-JS reference.
 */
export const demoModel = () => mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 2026, label: true });

export const DEMO_MODEL_NAME = 'demo';
export const DEMO_MODEL_FILE = `${__dirname}/model/demo.onnx`;

/** A request the demo sends, and the README's curl line repeats. */
export const DEMO_FEATURES = [0.5, -1.2, 3.3, 0.7];
