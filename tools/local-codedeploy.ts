/**
 * A stand-in for CodeDeploy's PutLifecycleEventHookExecutionStatus on 127.0.0.1, for tests. It speaks
 * the awsJson1_1 wire protocol as `@aws-sdk/client-codedeploy` reads it:
 *
 * - `POST /` with `X-Amz-Target: CodeDeploy_20141006.<Operation>` and a JSON body;
 * - a 200 answers `{"lifecycleEventHookExecutionId": ...}`;
 * - an error is a 4xx/5xx whose JSON body names the code in `__type`, with a `message`.
 *
 * Like the service, a second report for the same hook execution is refused with
 * LifecycleEventAlreadyCompletedException, so a test notices a handler that reports twice.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const REGION = 'eu-west-1';
const ACCESS_KEY_ID = 'AKIALOCALCODEDEPLOY0';
const SECRET_ACCESS_KEY = 'local-codedeploy-secret';
const TARGET_PREFIX = 'CodeDeploy_20141006.';
const STATUSES = ['Pending', 'InProgress', 'Succeeded', 'Failed', 'Skipped', 'Unknown'];

/** One request the server received, answered or refused. */
export interface CodeDeployCall {
  /** The operation from `X-Amz-Target`, without the service prefix. */
  readonly operation: string;
  /** Header names in lower case, as Node gives them. */
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly deploymentId?: string;
  readonly lifecycleEventHookExecutionId?: string;
  readonly status?: string;
  /** The error code answered, when the call was refused. */
  readonly error?: string;
  /** Whether the call was recorded and its answer then lost (see `loseNextAnswer`). */
  readonly answerLost?: boolean;
}

export interface CodeDeployError {
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

export interface LocalCodeDeploy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request received, in order, the refused ones included. */
  readonly calls: CodeDeployCall[];
  /** The environment the SDK needs to reach this server: endpoint override, region, fake credentials. */
  env(): Record<string, string>;
  /**
   * Refuses the next `times` requests with `error` (by default a DeploymentDoesNotExistException, a
   * 400 the SDK does not retry).
   */
  failNext(error?: Partial<CodeDeployError>, times?: number): void;
  /**
   * Records the next accepted report as the service does, then drops the connection instead of
   * answering: the answer lost on its way back, after which the SDK retries a report CodeDeploy
   * already has.
   */
  loseNextAnswer(): void;
  /** Forgets the calls, the reported hook executions and any pending failure. */
  reset(): void;
  stop(): Promise<void>;
}

export async function startLocalCodeDeploy(): Promise<LocalCodeDeploy> {
  const calls: CodeDeployCall[] = [];
  const completed = new Set<string>();
  let failures: CodeDeployError[] = [];
  let loseAnswer = false;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target;
      let input: Record<string, unknown> = {};
      try {
        input = JSON.parse(text || '{}');
      } catch {
        // Left empty: the checks below refuse it.
      }
      const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
      const call = {
        operation,
        headers: req.headers,
        text,
        deploymentId: str(input.deploymentId),
        lifecycleEventHookExecutionId: str(input.lifecycleEventHookExecutionId),
        status: str(input.status),
      };
      const refusal = failures.shift() ?? validate(req, call, completed);
      calls.push(refusal ? { ...call, error: refusal.code } : call);
      if (refusal) {
        sendJson(res, refusal.status, { __type: refusal.code, message: refusal.message });
        return;
      }
      if (call.status === 'Succeeded' || call.status === 'Failed') completed.add(call.lifecycleEventHookExecutionId!);
      if (loseAnswer) {
        loseAnswer = false;
        calls[calls.length - 1] = { ...call, answerLost: true };
        req.socket.destroy();
        return;
      }
      sendJson(res, 200, { lifecycleEventHookExecutionId: call.lifecycleEventHookExecutionId });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    calls,
    env: () => ({
      AWS_ENDPOINT_URL_CODEDEPLOY: url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    }),
    failNext(error = {}, times = 1) {
      const full: CodeDeployError = {
        code: error.code ?? 'DeploymentDoesNotExistException',
        status: error.status ?? 400,
        message: error.message ?? 'The deployment does not exist in the user account.',
      };
      failures = Array.from({ length: times }, () => full);
    },
    loseNextAnswer() {
      loseAnswer = true;
    },
    reset() {
      calls.length = 0;
      completed.clear();
      failures = [];
      loseAnswer = false;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}

function validate(req: http.IncomingMessage, call: Omit<CodeDeployCall, 'error'>, completed: Set<string>): CodeDeployError | undefined {
  const refuse = (code: string, message: string, status = 400): CodeDeployError => ({ code, status, message });
  if (req.method !== 'POST' || call.operation !== 'PutLifecycleEventHookExecutionStatus') {
    return refuse('UnknownOperationException', `no operation ${req.method} ${String(req.headers['x-amz-target'])}`);
  }
  if (!String(req.headers['content-type']).startsWith('application/x-amz-json-1.1')) {
    return refuse('SerializationException', `unexpected Content-Type ${String(req.headers['content-type'])}`);
  }
  if (!call.deploymentId) return refuse('DeploymentIdRequiredException', 'A deployment ID must be specified.');
  if (!call.lifecycleEventHookExecutionId) {
    return refuse('InvalidLifecycleEventHookExecutionIdException', 'A lifecycle event hook execution ID must be specified.');
  }
  if (!STATUSES.includes(call.status ?? '')) {
    return refuse('InvalidLifecycleEventHookExecutionStatusException', `Invalid status: ${String(call.status)}`);
  }
  if (completed.has(call.lifecycleEventHookExecutionId)) {
    return refuse('LifecycleEventAlreadyCompletedException', 'The lifecycle event has already completed.');
  }
  return undefined;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.1',
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}
