/**
 * Sets variables on `process.env` (a local stand-in's endpoint and credentials, for the AWS SDK
 * the handler creates), and returns what puts back the values they had.
 */
export function setEnvironment(vars: Readonly<Record<string, string>>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
