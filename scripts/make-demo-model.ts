import * as fs from 'node:fs';
import { DEMO_MODEL_ARCHIVE, DEMO_MODEL_FILE, demoModel, demoTritonArchive } from '../fixtures/demo-model';

// Rewrites the committed demo model and its Triton archive; a test checks that the committed files
// still equal these bytes.
fs.writeFileSync(DEMO_MODEL_FILE, demoModel().bytes);
fs.writeFileSync(DEMO_MODEL_ARCHIVE, demoTritonArchive());
console.log(`wrote ${DEMO_MODEL_FILE} and ${DEMO_MODEL_ARCHIVE}`);
