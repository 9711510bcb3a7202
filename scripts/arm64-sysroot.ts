/**
 * Prepares what it takes to run the arm64 ONNX Runtime layer on an x86_64 Debian machine: Debian's
 * `qemu-user-static` and an arm64 Node.js unpacked into a sysroot (never installed into the host).
 * The arm64 test (`test/arm64-onnxruntime.test.ts`) calls it; it also runs on its own:
 * `npx tsx scripts/arm64-sysroot.ts`.
 *
 * Idempotent and cached: the sysroot lives in `$CSI_ARM64_CACHE` (default `<os tmpdir>/cdk-serverless-inference-arm64`)
 * and is reused while its stamp matches this script's package list; `apt-get update` only runs when
 * apt knows no arm64 packages yet or a download fails on stale lists. Needs root (apt-get, dpkg).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Debian 12 (bookworm)'s Node.js for arm64 and the shared libraries it loads, plus the arch-all
 * packages whose JavaScript Debian's node loads as builtins from /usr/share/nodejs.
 */
export const ARM64_PACKAGES = [
  'nodejs:arm64',
  'libnode108:arm64',
  'libuv1:arm64',
  'libicu72:arm64',
  'libssl3:arm64',
  'libbrotli1:arm64',
  'libc-ares2:arm64',
  'libnghttp2-14:arm64',
  'zlib1g:arm64',
  'libc6:arm64',
  'libstdc++6:arm64',
  'libgcc-s1:arm64',
  'node-cjs-module-lexer',
  'node-acorn',
  'node-undici',
] as const;

export const QEMU_AARCH64 = '/usr/bin/qemu-aarch64-static';

/** The library path of Debian's multiarch layout inside the sysroot. */
export const SYSROOT_LD_LIBRARY_PATH = '/usr/lib/aarch64-linux-gnu:/lib/aarch64-linux-gnu';

export interface Arm64Sysroot {
  /** The unpacked arm64 root: pass it to qemu with `-L`. */
  readonly root: string;
  /** The arm64 node binary inside `root`. */
  readonly node: string;
  readonly qemu: string;
  /** What the arm64 node reports as `process.version`. */
  readonly nodeVersion: string;
  /** The .deb files the sysroot was unpacked from. */
  readonly debs: readonly string[];
  /** True when nothing had to be installed, downloaded or unpacked. */
  readonly cached: boolean;
  /** Seconds each step took (apt-get update, install, download, unpack), for the record. */
  readonly steps: Readonly<Record<string, number>>;
}

export interface EnsureArm64SysrootOptions {
  /** @default $CSI_ARM64_CACHE or `<os tmpdir>/cdk-serverless-inference-arm64` */
  readonly cacheDir?: string;
  /** Progress lines (apt's slow steps). @default - none */
  readonly log?: (line: string) => void;
}

interface Stamp {
  readonly packages: readonly string[];
  readonly debs: readonly string[];
  readonly nodeVersion: string;
}

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };
/** Waits for another apt or dpkg instead of failing at once on its lock. */
const APT_LOCK_WAIT = ['-o', 'DPkg::Lock::Timeout=600'];
const MINUTE = 60_000;

export function defaultArm64CacheDir(): string {
  return process.env.CSI_ARM64_CACHE ?? path.join(process.env.CSI_CACHE_TMP ?? os.tmpdir(), 'cdk-serverless-inference-arm64');
}

/**
 * Makes sure qemu-user-static is installed, apt knows arm64 packages, and an arm64 Node.js is unpacked
 * in the cache; returns where. Throws an error that says what failed and how to fix it.
 */
export async function ensureArm64Sysroot(options: EnsureArm64SysrootOptions = {}): Promise<Arm64Sysroot> {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? defaultArm64CacheDir();
  const root = path.join(cacheDir, 'sysroot');
  const node = path.join(root, 'usr', 'bin', 'node');
  const steps: Record<string, number> = {};
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    log(`${step}...`);
    try {
      return await work();
    } finally {
      steps[step] = (Date.now() - started) / 1000;
    }
  };

  checkHost();
  const cachedStamp = readStamp(root);
  if (cachedStamp && fs.existsSync(QEMU_AARCH64) && fs.existsSync(node)) {
    return { root, node, qemu: QEMU_AARCH64, nodeVersion: cachedStamp.nodeVersion, debs: cachedStamp.debs, cached: true, steps };
  }

  let listsUpdated = false;
  const updateLists = async () => {
    await timed('apt-get update', () => aptGetUpdate());
    listsUpdated = true;
  };

  const foreign = (await run('dpkg', ['--print-foreign-architectures'])).split(/\s+/);
  if (!foreign.includes('arm64')) {
    await run('dpkg', ['--add-architecture', 'arm64']);
  }
  if (!(await hasCandidate('nodejs:arm64'))) {
    await updateLists();
  }
  if (!fs.existsSync(QEMU_AARCH64)) {
    await timed('apt-get install qemu-user-static', async () => {
      try {
        await aptGet(['install', '-y', '--no-install-recommends', 'qemu-user-static']);
      } catch (e) {
        if (listsUpdated) throw e;
        await updateLists();
        await aptGet(['install', '-y', '--no-install-recommends', 'qemu-user-static']);
      }
    });
  }

  fs.mkdirSync(cacheDir, { recursive: true });
  // Folders of this run's own: two runs at once never see each other's half-written files.
  const downloadDir = fs.mkdtempSync(path.join(cacheDir, 'download-'));
  const staging = fs.mkdtempSync(path.join(cacheDir, 'sysroot-'));
  try {
    await timed('apt-get download', async () => {
      try {
        await aptGet(['download', ...ARM64_PACKAGES], { cwd: downloadDir });
      } catch (e) {
        if (listsUpdated) throw e;
        // Lists older than the mirror name .debs it no longer has.
        await updateLists();
        await aptGet(['download', ...ARM64_PACKAGES], { cwd: downloadDir });
      }
    });
    const debs = ARM64_PACKAGES.map((pkg) => downloadedDeb(downloadDir, pkg));
    await timed('unpack', async () => {
      for (const deb of debs) {
        await run('dpkg', ['-x', path.join(downloadDir, deb), staging]);
      }
    });
    const stagedNode = path.join(staging, 'usr', 'bin', 'node');
    const nodeVersion = (
      await run(QEMU_AARCH64, ['-L', staging, '-E', `LD_LIBRARY_PATH=${SYSROOT_LD_LIBRARY_PATH}`, stagedNode, '-p', 'process.arch + " " + process.version'])
    ).trim();
    if (!nodeVersion.startsWith('arm64 ')) {
      throw new Error(`The unpacked Node.js reports "${nodeVersion}", expected arm64`);
    }
    const stamp: Stamp = { packages: [...ARM64_PACKAGES], debs, nodeVersion: nodeVersion.slice('arm64 '.length) };
    fs.writeFileSync(path.join(staging, STAMP_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
    // Replace the old sysroot (if any) with the complete new one; a concurrent run may have won already.
    fs.rmSync(root, { recursive: true, force: true });
    try {
      fs.renameSync(staging, root);
    } catch (e) {
      if (!readStamp(root)) throw e;
    }
    return { root, node, qemu: QEMU_AARCH64, nodeVersion: stamp.nodeVersion, debs, cached: false, steps };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    fs.rmSync(downloadDir, { recursive: true, force: true });
  }
}

const STAMP_FILE = '.arm64-sysroot.json';

function readStamp(root: string): Stamp | undefined {
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(root, STAMP_FILE), 'utf8')) as Stamp;
    return JSON.stringify(stamp.packages) === JSON.stringify(ARM64_PACKAGES) ? stamp : undefined;
  } catch {
    return undefined;
  }
}

function checkHost(): void {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`The arm64 sysroot is for x86_64 Linux hosts (Debian, with apt); this is ${process.platform}/${process.arch}.`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'Running the arm64 layer under emulation needs root: apt-get installs qemu-user-static and adds the arm64 ' +
        'architecture, and the test hides /sys/devices/system/cpu in a private mount namespace (unshare -m, mount). ' +
        'Run the tests as root, as CI does.',
    );
  }
  if (!fs.existsSync('/usr/bin/apt-get') || !fs.existsSync('/usr/bin/dpkg')) {
    throw new Error('The arm64 sysroot is built with apt-get and dpkg (Debian); neither was found on this machine.');
  }
}

async function hasCandidate(pkg: string): Promise<boolean> {
  const policy = await run('apt-cache', ['policy', pkg]).catch(() => '');
  const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  return candidate !== undefined && candidate !== '(none)';
}

/**
 * `apt-get update` fails as a whole when any one source does (say, a mirror that is out of reach);
 * what matters here is whether Debian's arm64 lists arrived, so that is what decides.
 */
async function aptGetUpdate(): Promise<void> {
  try {
    await aptGet(['update']);
  } catch (e) {
    if (!(await hasCandidate('nodejs:arm64'))) {
      throw e;
    }
  }
}

async function aptGet(args: readonly string[], options: { cwd?: string } = {}): Promise<string> {
  // apt-get update takes the lists lock without waiting for it: retry while another apt holds it.
  for (let attempt = 1; ; attempt++) {
    try {
      return await run('apt-get', [...APT_LOCK_WAIT, ...args], { cwd: options.cwd, timeout: 10 * MINUTE });
    } catch (e) {
      if (attempt < 20 && /Could not get lock|Unable to lock/i.test(String(e))) {
        await new Promise((resolve) => setTimeout(resolve, 15_000));
        continue;
      }
      throw new Error(`apt-get ${args.join(' ')} failed; the arm64 test needs apt to reach Debian's mirror. ${e instanceof Error ? e.message : e}`);
    }
  }
}

/** The .deb `apt-get download` wrote for `pkg`: `name_version_arch.deb`. */
function downloadedDeb(dir: string, pkg: string): string {
  const [name, arch] = pkg.split(':');
  const matches = fs.readdirSync(dir).filter((f) => f.startsWith(`${name}_`) && f.endsWith(`_${arch ?? 'all'}.deb`));
  if (matches.length !== 1) {
    throw new Error(`apt-get download left ${matches.length} .deb files for ${pkg} in ${dir}, expected one`);
  }
  return matches[0];
}

function run(command: string, args: readonly string[], options: { cwd?: string; timeout?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, env: APT_ENV, timeout: options.timeout ?? 5 * MINUTE, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const tail = `${stderr}`.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`${command} ${args.join(' ')} exited with ${error.code ?? error.signal}${error.killed ? ' (timed out)' : ''}:\n${tail}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

if (typeof module !== 'undefined' && require.main === module) {
  const started = Date.now();
  ensureArm64Sysroot({ log: (line) => console.log(line) })
    .then((sysroot) => {
      console.log(
        `arm64 Node.js ${sysroot.nodeVersion} in ${sysroot.root} (${sysroot.cached ? 'cached' : `built: ${JSON.stringify(sysroot.steps)}`}), ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    })
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    });
}
