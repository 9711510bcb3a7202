// One execution environment of tools/local-function.ts: a process that loads a handler bundle as
// Lambda's Node.js runtime does (its init phase is the module's top-level code) and then answers
// one invocation at a time, sent by the parent over IPC.
//
// What it reproduces of the runtime (aws-lambda-nodejs-runtime-interface-client):
// - the event is the payload parsed with JSON.parse, the context has awsRequestId and
//   getRemainingTimeInMillis();
// - a buffered handler's result is sent as JSON.stringify(result), `null` for undefined;
// - a handler marked by `awslambda.streamifyResponse` gets a response stream, and a buffered Invoke
//   returns the bytes written to it (`HttpResponseStream.from` writes the JSON prelude and eight
//   NUL bytes before the first write of the body);
// - a thrown error becomes `{errorType, errorMessage, trace}`.
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';

class ResponseStream extends Writable {
  chunks = [];
  contentType = 'application/octet-stream';
  beforeFirstWrite = undefined;

  setContentType(contentType) {
    this.contentType = contentType;
  }

  _write(chunk, _encoding, callback) {
    const first = this.beforeFirstWrite;
    if (first) {
      this.beforeFirstWrite = undefined;
      first((c) => this.chunks.push(Buffer.from(c)));
    }
    this.chunks.push(Buffer.from(chunk));
    callback();
  }
}

globalThis.awslambda = {
  streamifyResponse(handler) {
    handler[STREAMING] = 'response';
    return handler;
  },
  HttpResponseStream: {
    from(stream, prelude) {
      stream.setContentType(PRELUDE_CONTENT_TYPE);
      stream.beforeFirstWrite = (write) => {
        write(JSON.stringify(prelude));
        write(Buffer.alloc(8));
      };
      return stream;
    },
  },
};

function errorPayload(e) {
  const error = e instanceof Error ? e : new Error(String(e));
  return JSON.stringify({ errorType: error.name, errorMessage: error.message, trace: String(error.stack ?? '').split('\n') });
}

const [file, exportName] = process.env.LOCAL_FUNCTION_HANDLER.split('.');
let handler;
let initError;
try {
  const module = await import(pathToFileURL(path.join(process.env.LAMBDA_TASK_ROOT, `${file}.mjs`)).href);
  handler = module[exportName];
  if (typeof handler !== 'function') throw Object.assign(new Error(`${file}.${exportName} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
} catch (e) {
  initError = e;
}
process.send({ type: 'ready' });

process.on('message', async (message) => {
  const { id, payload, deadline, requestId } = message;
  const reply = (answer) => process.send({ type: 'answer', id, ...answer });
  if (initError) {
    reply({ error: errorPayload(initError) });
    return;
  }
  const context = {
    awsRequestId: requestId,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const event = JSON.parse(payload);
    if (handler[STREAMING] === 'response') {
      const stream = new ResponseStream();
      const ended = new Promise((resolve) => stream.once('finish', resolve));
      await handler(event, stream, context);
      await ended;
      reply({ payload: Buffer.concat(stream.chunks).toString('base64'), encoding: 'base64' });
    } else {
      const result = await handler(event, context);
      reply({ payload: JSON.stringify(result === undefined ? null : result), encoding: 'utf8' });
    }
  } catch (e) {
    reply({ error: errorPayload(e) });
  }
});
