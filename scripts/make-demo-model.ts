import * as fs from 'node:fs';
import { DEMO_CANDIDATE_MODEL_FILE, DEMO_MODEL_ARCHIVE, DEMO_MODEL_FILE, demoCandidateModel, demoModel, demoTritonArchive } from '../fixtures/demo-model';

// Rewrites the committed demo model and its Triton archive; a test checks that the committed files
// still equal these bytes.
fs.writeFileSync(DEMO_MODEL_FILE, demoModel().bytes);
fs.writeFileSync(DEMO_MODEL_ARCHIVE, demoTritonArchive());
fs.writeFileSync(DEMO_CANDIDATE_MODEL_FILE, demoCandidateModel().bytes);
console.log(`wrote ${DEMO_MODEL_FILE}, ${DEMO_MODEL_ARCHIVE} and ${DEMO_CANDIDATE_MODEL_FILE}`);
