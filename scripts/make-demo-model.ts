import * as fs from 'node:fs';
import { DEMO_MODEL_FILE, demoModel } from '../demo/demo-model';

// Rewrites the committed demo model; a test checks that the committed file still equals these bytes.
fs.writeFileSync(DEMO_MODEL_FILE, demoModel().bytes);
console.log(`wrote ${DEMO_MODEL_FILE}`);
