import * as fs from 'node:fs';
import * as path from 'node:path';

/*
 * Canonical bytes for a model onnxruntime saved in ORT format.
 *
 * An ORT format model is a FlatBuffer (onnxruntime/core/flatbuffers/schema/ort.fbs, root table
 * InferenceSession, file identifier "ORTM"). FlatBuffers are built back to front, and
 * InferenceSession::SaveToOrtFormat builds, in this order: the format version string (the last bytes
 * of the file), the model (everything from the Model table to that string), the kernel type string
 * resolver, then the root table (right after the file identifier). The model is the same bytes every
 * time. The resolver is not: KernelTypeStrResolver::SaveToOrtFormat walks two hash maps whose
 * iteration order is randomised per process, so its tables, the one copy of each string it shares
 * and the vtables the builder shares land in another order each time, with other padding between
 * them: the same content in other bytes, and even another number of bytes (seen on arm64).
 *
 * The canonical file keeps the model's bytes as they are (the "model area": from the Model table, or
 * its vtable when lower, to the end) and writes everything before them again, from their content
 * alone: the root table and the resolver's subtree, which is all that lives there (nothing of the
 * model can: it was built first, and FlatBuffers only point to what was built before). The new head
 * holds, from low to high: the file header, the vtables (one per distinct layout, in order of first
 * use), the root table, the resolver's tables and vectors in pre-order (an offset points forwards),
 * its operators sorted by op id and each one's kernel type strings sorted by name, then its strings,
 * sorted, each once, then zeros so that the file's size is a multiple of 64: the model area keeps
 * every alignment (up to 64 bytes) it had, which onnxruntime's builder counts from the file's end.
 * Each table is laid out afresh (fields in slot order, each aligned to its size), so the padding the
 * builder left inside a table is gone too. The order within an argument list means something and is
 * kept; the vectors stay sorted by key, as onnxruntime writes them (`CreateVectorOfSortedTables`).
 *
 * Before anything is written, every byte between the header and the model area must belong to an
 * object of the root's or the resolver's, or be zero (padding): nothing unknown is dropped. Fields
 * this schema does not know, and the deprecated session state, are refused rather than carried over;
 * the rewritten head is read back and must say what the old one said.
 *
 * onnxruntime reads the resolver into hash maps (KernelTypeStrResolver::LoadFromOrtFormat, called by
 * InferenceSession::LoadOrtModel in the full build as in the minimal one): where its entries lie
 * carries no meaning.
 */

/** The FlatBuffers file identifier of an ORT format model. */
const FILE_IDENTIFIER = 'ORTM';
/** The root offset and the file identifier. */
const HEADER_BYTES = 8;
/** The canonical file's size is a multiple of this: the model area keeps its alignments up to it. */
const FILE_ALIGNMENT = 64;

/** A field of a table, by its slot in the vtable. */
type FieldSpec =
  | { readonly kind: 'string' }
  | { readonly kind: 'table'; readonly of: TableName }
  | { readonly kind: 'vector'; readonly of: TableName }
  | { readonly kind: 'scalar'; readonly bytes: 1 | 4 }
  /** A reference into the model area, kept as it is (moved with the area). */
  | { readonly kind: 'model-area' }
  /** Deprecated: refused when present. */
  | { readonly kind: 'absent' };

type TableName = 'InferenceSession' | 'KernelTypeStrResolver' | 'OpIdKernelTypeStrArgsEntry' | 'KernelTypeStrArgsEntry' | 'ArgTypeAndIndex';

/** The tables of ort.fbs that the head holds, field by field. */
const SCHEMA: Record<TableName, readonly FieldSpec[]> = {
  // ort_version, model, session_state (deprecated), kernel_type_str_resolver
  InferenceSession: [{ kind: 'model-area' }, { kind: 'model-area' }, { kind: 'absent' }, { kind: 'table', of: 'KernelTypeStrResolver' }],
  // op_kernel_type_str_args
  KernelTypeStrResolver: [{ kind: 'vector', of: 'OpIdKernelTypeStrArgsEntry' }],
  // op_id (key), kernel_type_str_args
  OpIdKernelTypeStrArgsEntry: [{ kind: 'string' }, { kind: 'vector', of: 'KernelTypeStrArgsEntry' }],
  // kernel_type_str (key), args
  KernelTypeStrArgsEntry: [{ kind: 'string' }, { kind: 'vector', of: 'ArgTypeAndIndex' }],
  // arg_type (int8), index (uint32)
  ArgTypeAndIndex: [
    { kind: 'scalar', bytes: 1 },
    { kind: 'scalar', bytes: 4 },
  ],
};

/** The tables whose first field is a key (`(key)` in ort.fbs): the entries of the resolver's two maps. */
const KEYED: ReadonlySet<TableName> = new Set<TableName>(['OpIdKernelTypeStrArgsEntry', 'KernelTypeStrArgsEntry']);

/** A reference into the model area, by its position in the file read. */
interface ModelAreaRef {
  readonly kind: 'model-area';
  readonly position: number;
}
interface StringNode {
  readonly kind: 'string';
  readonly value: Buffer;
}
interface VectorNode {
  readonly kind: 'vector';
  readonly items: Node[];
}
interface Field {
  readonly slot: number;
  /** A scalar's bytes, or what the field points to. */
  readonly scalar?: Buffer;
  readonly target?: Node;
}
interface TableNode {
  readonly kind: 'table';
  readonly name: TableName;
  /** Where it is in the file read. */
  readonly position: number;
  /** Present fields, in slot order. */
  readonly fields: readonly Field[];
}
type Node = ModelAreaRef | StringNode | VectorNode | TableNode;

/** One operator of the resolver, as `readOrtResolver` reports it. */
export interface OrtResolverOp {
  /** `domain:op_type:since_version`, e.g. `:Gemm:13`. */
  readonly opId: string;
  /** Where its table is in the file. */
  readonly position: number;
  readonly kernelTypeStrs: ReadonlyArray<{ readonly name: string; readonly position: number; readonly args: readonly string[] }>;
}

/** Random access to a model's bytes. */
interface Bytes {
  readonly size: number;
  slice(position: number, length: number): Buffer;
}

class BufferBytes implements Bytes {
  public readonly size: number;
  constructor(private readonly buffer: Buffer) {
    this.size = buffer.length;
  }
  public slice(position: number, length: number): Buffer {
    return this.buffer.subarray(position, position + length);
  }
}

/** A file read in pages as needed: of a model of gigabytes, only the head and what it points to are read. */
class FileBytes implements Bytes {
  private static readonly PAGE = 64 * 1024;
  public readonly size: number;
  private readonly pages = new Map<number, Buffer>();
  constructor(private readonly fd: number) {
    this.size = fs.fstatSync(fd).size;
  }
  public slice(position: number, length: number): Buffer {
    const first = Math.floor(position / FileBytes.PAGE);
    if (first === Math.floor((position + length - 1) / FileBytes.PAGE)) {
      const start = position - first * FileBytes.PAGE;
      return this.page(first).subarray(start, start + length);
    }
    const out = Buffer.alloc(length);
    fs.readSync(this.fd, out, 0, length, position);
    return out;
  }
  private page(index: number): Buffer {
    let page = this.pages.get(index);
    if (!page) {
      const start = index * FileBytes.PAGE;
      page = Buffer.alloc(Math.min(FileBytes.PAGE, this.size - start));
      fs.readSync(this.fd, page, 0, page.length, start);
      this.pages.set(index, page);
    }
    return page;
  }
}

class OrtFormatError extends Error {
  constructor(message: string) {
    super(`not a canonicalisable ORT format model: ${message}`);
  }
}

/** The head, parsed: the root table, and where the model area begins. */
interface Parsed {
  readonly root: TableNode;
  readonly modelArea: number;
}

function parse(bytes: Bytes): Parsed {
  const check = (p: number, n: number): Buffer => {
    if (!Number.isInteger(p) || p < 0 || p + n > bytes.size) throw new OrtFormatError(`offset ${p} is outside the file (${bytes.size} bytes)`);
    return bytes.slice(p, n);
  };
  const u32 = (p: number) => check(p, 4).readUInt32LE(0);
  const u16 = (p: number) => check(p, 2).readUInt16LE(0);
  const vtableOf = (t: number) => {
    const at = t - check(t, 4).readInt32LE(0);
    const size = u16(at);
    if (size < 4 || size % 2 !== 0) throw new OrtFormatError(`the vtable at ${at} has size ${size}`);
    return { at, bytes: Buffer.from(check(at, size)), tableSize: u16(at + 2) };
  };
  const fieldOffset = (vt: Buffer, slot: number) => (4 + 2 * slot < vt.length ? vt.readUInt16LE(4 + 2 * slot) : 0);

  if (bytes.size < HEADER_BYTES || bytes.slice(4, 4).toString('latin1') !== FILE_IDENTIFIER) {
    throw new OrtFormatError(`no "${FILE_IDENTIFIER}" file identifier`);
  }
  const rootPosition = u32(0);
  // The model's table bounds the head: its vtable sits right below it when the model wrote it there.
  const modelSlot = fieldOffset(vtableOf(rootPosition).bytes, 1);
  if (modelSlot === 0) throw new OrtFormatError('the InferenceSession has no model');
  const modelPosition = rootPosition + modelSlot + u32(rootPosition + modelSlot);
  const modelArea = Math.min(modelPosition, vtableOf(modelPosition).at);
  if (rootPosition < HEADER_BYTES || rootPosition >= modelArea) {
    throw new OrtFormatError(`the root table (${rootPosition}) is not between the header and the model (${modelArea})`);
  }
  const inHead = (p: number) => p >= HEADER_BYTES && p < modelArea;

  // The head's objects, to check that they and zero padding are all it holds.
  const spans: Array<[number, number]> = [];
  const seen = new Map<number, Node>();

  const readString = (p: number): Buffer => {
    const length = u32(p);
    const value = Buffer.from(check(p + 4, length + 1));
    if (value[length] !== 0) throw new OrtFormatError(`the string at ${p} is not NUL-terminated`);
    if (inHead(p)) spans.push([p, p + 4 + length + 1]);
    return value.subarray(0, length);
  };

  const node = (p: number, spec: FieldSpec): Node => {
    if (spec.kind === 'model-area') {
      if (p < modelArea || p >= bytes.size) throw new OrtFormatError(`a reference of the root table points to ${p}, outside the model area`);
      return { kind: 'model-area', position: p };
    }
    // A string the model wrote first may be shared by the resolver: read where it is.
    if (p < HEADER_BYTES || (!inHead(p) && spec.kind !== 'string'))
      throw new OrtFormatError(`a ${spec.kind} of the resolver is at ${p}, outside the head [${HEADER_BYTES}, ${modelArea})`);
    const known = seen.get(p);
    if (known) return known;
    let made: Node;
    if (spec.kind === 'string') {
      made = { kind: 'string', value: readString(p) };
    } else if (spec.kind === 'vector') {
      const count = u32(p);
      spans.push([p, p + 4 + 4 * count]);
      const items: Node[] = [];
      for (let i = 0; i < count; i++) {
        const at = p + 4 + 4 * i;
        items.push(node(at + u32(at), { kind: 'table', of: spec.of }));
      }
      made = { kind: 'vector', items };
    } else if (spec.kind === 'table') {
      made = table(p, spec.of);
    } else {
      throw new OrtFormatError(`a ${spec.kind} field cannot be pointed to`);
    }
    seen.set(p, made);
    return made;
  };

  const table = (p: number, name: TableName): TableNode => {
    const vt = vtableOf(p);
    // A vtable the model wrote first may be shared: only those in the head are the head's bytes.
    if (inHead(vt.at)) spans.push([vt.at, vt.at + vt.bytes.length]);
    else if (vt.at < modelArea) throw new OrtFormatError(`the vtable of the ${name} at ${p} is at ${vt.at}, in the file header`);
    spans.push([p, p + vt.tableSize]);
    const fields: Field[] = [];
    for (let slot = 0; 4 + 2 * slot < vt.bytes.length; slot++) {
      const offset = fieldOffset(vt.bytes, slot);
      if (offset === 0) continue;
      const spec = SCHEMA[name][slot];
      if (!spec || spec.kind === 'absent') throw new OrtFormatError(`the ${name} at ${p} has a field in slot ${slot}, which this canonicaliser does not know`);
      const size = spec.kind === 'scalar' ? spec.bytes : 4;
      if (offset < 4 || offset + size > vt.tableSize) throw new OrtFormatError(`field ${slot} of the ${name} at ${p} lies outside it`);
      fields.push(spec.kind === 'scalar' ? { slot, scalar: Buffer.from(check(p + offset, size)) } : { slot, target: node(p + offset + u32(p + offset), spec) });
    }
    return { kind: 'table', name, position: p, fields };
  };

  const root = table(rootPosition, 'InferenceSession');
  checkHead(bytes.slice(0, modelArea), spans);
  return { root, modelArea };
}

/** The head's objects must not overlap, and every other byte of it must be zero. */
function checkHead(head: Buffer, spans: Array<[number, number]>): void {
  const unique = [...new Map(spans.map((s) => [`${s[0]}:${s[1]}`, s])).values()].sort((a, b) => a[0] - b[0]);
  let covered = HEADER_BYTES;
  for (const [from, to] of unique) {
    if (from < covered) throw new OrtFormatError(`objects overlap at ${from}`);
    if (to > head.length) throw new OrtFormatError(`the object at ${from} runs into the model (${head.length})`);
    assertZero(head, covered, from);
    covered = to;
  }
  assertZero(head, covered, head.length);
}

function assertZero(head: Buffer, from: number, to: number): void {
  for (let p = from; p < to; p++) {
    if (head[p] !== 0) throw new OrtFormatError(`byte ${p} of the head belongs to no object of the root's or the resolver's`);
  }
}

/** The key of an entry table: its key string's bytes. */
function keyOf(entry: Node): Buffer {
  const target = entry.kind === 'table' ? entry.fields.find((f) => f.slot === 0)?.target : undefined;
  if (target?.kind !== 'string') throw new OrtFormatError('an entry of the resolver has no key');
  return target.value;
}

function fieldTarget(t: TableNode, slot: number): Node | undefined {
  return t.fields.find((f) => f.slot === slot)?.target;
}

function childVector(t: TableNode, slot: number): VectorNode | undefined {
  const target = fieldTarget(t, slot);
  return target?.kind === 'vector' ? target : undefined;
}

function resolverOps(root: TableNode): VectorNode {
  const resolver = fieldTarget(root, 3);
  const ops = resolver?.kind === 'table' ? childVector(resolver, 0) : undefined;
  if (!ops) throw new OrtFormatError('the InferenceSession has no kernel type string resolver with an operator list');
  return ops;
}

/** The order entries are laid out in, by their keys. The vectors that list them stay sorted by key. */
type KeyOrder = (a: Buffer, b: Buffer) => number;

function sortByKey(items: Node[]): void {
  items.sort((a, b) => Buffer.compare(keyOf(a), keyOf(b)));
  for (let i = 1; i < items.length; i++) {
    if (keyOf(items[i - 1]).equals(keyOf(items[i]))) throw new OrtFormatError(`the key "${keyOf(items[i]).toString()}" is there twice`);
  }
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A table's canonical inline layout: the vtable offset, then its fields in slot order, each aligned to its size. */
function tableLayout(t: TableNode): { readonly vtable: Buffer; readonly size: number; readonly offsets: ReadonlyMap<number, number> } {
  const offsets = new Map<number, number>();
  let end = 4;
  for (const f of t.fields) {
    const size = f.scalar?.length ?? 4;
    const at = align(end, size);
    offsets.set(f.slot, at);
    end = at + size;
  }
  const size = align(end, 4);
  const slots = t.fields.length === 0 ? 0 : Math.max(...t.fields.map((f) => f.slot)) + 1;
  const vtable = Buffer.alloc(4 + 2 * slots);
  vtable.writeUInt16LE(vtable.length, 0);
  vtable.writeUInt16LE(size, 2);
  for (const [slot, at] of offsets) vtable.writeUInt16LE(at, 4 + 2 * slot);
  return { vtable, size, offsets };
}

/** The canonical head (see the top of this file) for a model area of `modelAreaBytes` bytes. */
function layOut(parsed: Parsed, modelAreaBytes: number, layoutOrder: KeyOrder): Buffer {
  const { root } = parsed;
  const ops = resolverOps(root);
  sortByKey(ops.items);
  for (const op of ops.items) {
    const kts = childVector(op as TableNode, 1);
    if (kts) sortByKey(kts.items);
  }

  // Pre-order, entries visited in layout order; strings apart.
  const order: Array<TableNode | VectorNode> = [];
  const visited = new Set<Node>();
  const strings = new Map<string, Buffer>();
  const visit = (n: Node): void => {
    if (n.kind === 'model-area') return;
    if (n.kind === 'string') {
      strings.set(n.value.toString('hex'), n.value);
      return;
    }
    if (visited.has(n)) return;
    visited.add(n);
    order.push(n);
    const keyed = n.kind === 'vector' && n.items.every((i) => i.kind === 'table' && KEYED.has(i.name));
    const children = n.kind === 'vector' ? (keyed ? [...n.items].sort((a, b) => layoutOrder(keyOf(a), keyOf(b))) : n.items) : n.fields.flatMap((f) => (f.target ? [f.target] : []));
    for (const child of children) visit(child);
  };
  visit(root);

  const layouts = new Map<TableNode, ReturnType<typeof tableLayout>>();
  const vtableAt = new Map<string, number>();
  const vtables: Buffer[] = [];
  let at = HEADER_BYTES;
  for (const n of order) {
    if (n.kind !== 'table') continue;
    const layout = tableLayout(n);
    layouts.set(n, layout);
    const k = layout.vtable.toString('hex');
    if (!vtableAt.has(k)) {
      vtableAt.set(k, at);
      vtables.push(layout.vtable);
      at += layout.vtable.length;
    }
  }
  const position = new Map<Node, number>();
  for (const n of order) {
    at = align(at, 4);
    position.set(n, at);
    at += n.kind === 'vector' ? 4 + 4 * n.items.length : layouts.get(n)!.size;
  }
  const stringAt = new Map<string, number>();
  const sortedStrings = [...strings].sort((a, b) => Buffer.compare(a[1], b[1]));
  for (const [k, value] of sortedStrings) {
    at = align(at, 4);
    stringAt.set(k, at);
    at += 4 + value.length + 1;
  }
  const headBytes = align(at + modelAreaBytes, FILE_ALIGNMENT) - modelAreaBytes;
  const shift = headBytes - parsed.modelArea;

  const out = Buffer.alloc(headBytes);
  out.write(FILE_IDENTIFIER, 4, 'latin1');
  out.writeUInt32LE(position.get(root)!, 0);
  let v = HEADER_BYTES;
  for (const vt of vtables) {
    vt.copy(out, v);
    v += vt.length;
  }
  for (const [k, value] of sortedStrings) {
    out.writeUInt32LE(value.length, stringAt.get(k)!);
    value.copy(out, stringAt.get(k)! + 4);
  }
  const targetOf = (n: Node): number => {
    if (n.kind === 'model-area') return n.position + shift;
    if (n.kind === 'string') return stringAt.get(n.value.toString('hex'))!;
    return position.get(n)!;
  };
  const writeOffset = (from: number, n: Node): void => {
    const to = targetOf(n);
    if (to <= from) throw new OrtFormatError(`an offset at ${from} would point backwards`);
    out.writeUInt32LE(to - from, from);
  };
  for (const n of order) {
    const p = position.get(n)!;
    if (n.kind === 'vector') {
      out.writeUInt32LE(n.items.length, p);
      for (const [i, item] of n.items.entries()) writeOffset(p + 4 + 4 * i, item);
      continue;
    }
    const layout = layouts.get(n)!;
    out.writeInt32LE(p - vtableAt.get(layout.vtable.toString('hex'))!, p);
    for (const f of n.fields) {
      const fieldAt = p + layout.offsets.get(f.slot)!;
      if (f.scalar) f.scalar.copy(out, fieldAt);
      else writeOffset(fieldAt, f.target!);
    }
  }
  return out;
}

/** What the head says, whatever its layout and its entries' order: for the check that a rewrite changed nothing but bytes. */
function contentOf(parsed: Parsed): string {
  const str = (n: Node | undefined) => (n?.kind === 'string' ? n.value.toString('hex') : undefined);
  const entries = (v: VectorNode | undefined) => [...(v?.items ?? [])].sort((a, b) => Buffer.compare(keyOf(a), keyOf(b))) as TableNode[];
  return JSON.stringify({
    root: parsed.root.fields.map((f) => (f.target?.kind === 'model-area' ? `${f.slot}@${f.target.position - parsed.modelArea}` : `${f.slot}`)),
    ops: entries(resolverOps(parsed.root)).map((op) => [
      str(fieldTarget(op, 0)),
      entries(childVector(op, 1)).map((kts) => [
        str(fieldTarget(kts, 0)),
        // An argument list keeps its order: it is what a kernel type string resolves to.
        (childVector(kts, 1)?.items ?? []).map((a) => (a as TableNode).fields.map((f) => `${f.slot}=${f.scalar?.toString('hex')}`).join(',')),
      ]),
    ]),
  });
}

/** The canonical head of `bytes`, checked by reading it back (the new head, then the model area as it is). */
function canonicalHead(bytes: Bytes, layoutOrder: KeyOrder): { readonly head: Buffer; readonly modelArea: number } {
  const parsed = parse(bytes);
  const before = contentOf(parsed);
  const head = layOut(parsed, bytes.size - parsed.modelArea, layoutOrder);
  const shift = head.length - parsed.modelArea;
  const after = parse({
    size: bytes.size + shift,
    slice: (p, n) => {
      if (p + n <= head.length) return head.subarray(p, p + n);
      const from = Math.max(p, head.length);
      return Buffer.concat([head.subarray(Math.min(p, head.length)), bytes.slice(from - shift, p + n - from)]);
    },
  });
  if (contentOf(after) !== before) throw new OrtFormatError('the rewritten head does not read back the same');
  return { head, modelArea: parsed.modelArea };
}

const BYTEWISE: KeyOrder = (a, b) => Buffer.compare(a, b);

/**
 * The ORT format model `model` in canonical bytes: the same for the same model whatever the process
 * or machine that converted it. Throws when the file is not laid out as onnxruntime lays it out (see
 * the top of this file): the caller must then not ship it.
 */
export function canonicalOrtModel(model: Buffer): Buffer {
  return rewrite(model, BYTEWISE);
}

/**
 * The same, with the resolver's operators and kernel type strings laid out in `layoutOrder` of their
 * names: for tests, which need a file laid out as another process could have written it.
 */
export function relayOrtModel(model: Buffer, layoutOrder: (a: string, b: string) => number): Buffer {
  return rewrite(model, (a, b) => layoutOrder(a.toString('utf8'), b.toString('utf8')));
}

function rewrite(model: Buffer, order: KeyOrder): Buffer {
  const { head, modelArea } = canonicalHead(new BufferBytes(model), order);
  return Buffer.concat([head, model.subarray(modelArea)]);
}

/**
 * `canonicalOrtModel` on a file: the new head, then the model area copied from the file as it is, into
 * a file beside it that then replaces it. Only the head and what it points to are read whole.
 */
export function canonicalizeOrtFile(file: string): void {
  const source = fs.openSync(file, 'r');
  const rewritten = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.canonical`);
  try {
    const bytes = new FileBytes(source);
    const { head, modelArea } = canonicalHead(bytes, BYTEWISE);
    const target = fs.openSync(rewritten, 'w');
    try {
      fs.writeSync(target, head);
      const chunk = Buffer.alloc(8 * 1024 * 1024);
      for (let from = modelArea; from < bytes.size; ) {
        const read = fs.readSync(source, chunk, 0, Math.min(chunk.length, bytes.size - from), from);
        if (read <= 0) throw new Error(`${file} ended at ${from} of ${bytes.size} bytes`);
        fs.writeSync(target, chunk, 0, read);
        from += read;
      }
    } finally {
      fs.closeSync(target);
    }
    fs.renameSync(rewritten, file);
  } finally {
    fs.closeSync(source);
    fs.rmSync(rewritten, { force: true });
  }
}

/**
 * The resolver's operators and their kernel type strings, in the order they lie in the file, and
 * where the model area begins: for tests and for a look at a file.
 */
export function readOrtResolver(model: Buffer): { readonly modelArea: number; readonly ops: OrtResolverOp[] } {
  const parsed = parse(new BufferBytes(model));
  const key = (t: TableNode) => keyOf(t).toString('utf8');
  const scalar = (t: TableNode, slot: number) => {
    const bytes = t.fields.find((f) => f.slot === slot)?.scalar;
    return bytes ? (bytes.length === 1 ? bytes.readInt8(0) : bytes.readUInt32LE(0)) : 0;
  };
  const byPosition = (a: { position: number }, b: { position: number }) => a.position - b.position;
  const ops = (resolverOps(parsed.root).items as TableNode[])
    .map((op) => ({
      opId: key(op),
      position: op.position,
      kernelTypeStrs: ((childVector(op, 1)?.items ?? []) as TableNode[])
        .map((k) => ({
          name: key(k),
          position: k.position,
          args: ((childVector(k, 1)?.items ?? []) as TableNode[]).map((a) => `${scalar(a, 0) === 1 ? 'output' : 'input'} ${scalar(a, 1)}`),
        }))
        .sort(byPosition),
    }))
    .sort(byPosition);
  return { modelArea: parsed.modelArea, ops };
}
