/** What each benchmark module exports, and what it hands back to `run.ts` for the report. */

export interface BenchContext {
  /** `--quick`: fewer repetitions and shorter runs, for a look in a few minutes. */
  readonly quick: boolean;
  /** The repository: children run here so that `node_modules` resolves. */
  readonly repoRoot: string;
  /** A folder of this run under the OS temp dir, removed when the run ends. */
  readonly tmpDir: string;
  log(message: string): void;
}

export interface Table {
  readonly caption?: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export interface BenchOutput {
  /** How the figures were taken, in a sentence or two (what is timed, against which baseline). */
  readonly method: string;
  readonly tables: readonly Table[];
  readonly notes?: readonly string[];
  /** The raw figures, for latest.json. */
  readonly data: unknown;
  /** More files for bench/results/, by name (a chart). */
  readonly files?: Readonly<Record<string, string>>;
}

export interface Bench {
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<BenchOutput>;
}

export interface BenchRecord extends Omit<BenchOutput, 'files'> {
  readonly name: string;
  readonly title: string;
  /** When this benchmark ran (an `--only` run keeps the other benchmarks' earlier records). */
  readonly date: string;
  readonly quick: boolean;
  readonly seconds: number;
  /** Names of the files it wrote to bench/results/ (an SVG chart the report shows). */
  readonly files: readonly string[];
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly onnxruntime: string;
  readonly awsCdkLib: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  readonly loadAverage: number;
}

export interface Results {
  readonly machine: Machine;
  /** When the latest run (of all benchmarks or some) started. */
  readonly date: string;
  readonly benchmarks: Record<string, BenchRecord>;
}
