/**
 * A renderer of API Gateway mapping templates, for the subset of Velocity (VTL 1.7) the library's
 * templates use, with the rules AWS documents for API Gateway ("Variables for data transformations
 * for API Gateway"):
 *
 * - `$input.body`: the payload, a string; `$input.path(x)`: the JSONPath `x` (`$` or `$.a.b`) of the
 *   payload as a value (a JSON number is a number); `$input.json(x)`: the same as JSON text.
 * - `$util.escapeJavaScript(s)`: "escapes the characters in a string using JavaScript string rules",
 *   turning `'` into `\'`, which AWS notes is not valid in JSON. The rules are Apache Commons Lang's
 *   `StringEscapeUtils.escapeJavaScript`: `'` `"` `\` `/` escaped with a backslash, `\b \t \n \f \r`,
 *   other control characters and every character past U+007F as `\uXXXX`.
 * - `$context.requestId`; `#set($context.responseOverride.status = n)` overrides the status.
 * - `#set`, `#if`/`#elseif`/`#else`/`#end` with `== != < <= > >= && || !`, numbers and strings, as
 *   Velocity 1.7 evaluates them: `#set` from a null value leaves the variable as it was, `==` of two
 *   values of different types compares their strings, `<` and its kin are false unless both sides
 *   are numbers, and a reference without a value is written as it stands in the template.
 *
 * Anything else in a template is an error here, so that a template using more fails its test
 * rather than render something API Gateway would not.
 */

export interface MappingInput {
  /** The payload: the integration's response body, for a response template. */
  readonly body: string;
  readonly requestId: string;
}

export interface Rendered {
  readonly output: string;
  /** `$context.responseOverride.status`, when the template set it. */
  readonly statusOverride?: number;
}

export function renderMappingTemplate(template: string, input: MappingInput): Rendered {
  return new Renderer(template, input).render();
}

/** `$util.escapeJavaScript`, as Apache Commons Lang 2's StringEscapeUtils.escapeJavaScript escapes. */
export function escapeJavaScript(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (code > 0xffff) {
      // Java strings are UTF-16: a character past the BMP is two escaped surrogates.
      for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')}`;
    } else if (code > 0x7f) {
      out += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    } else if (code < 0x20) {
      const named: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };
      out += named[code] ?? `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    } else if (ch === "'" || ch === '"' || ch === '\\' || ch === '/') {
      out += `\\${ch}`;
    } else {
      out += ch;
    }
  }
  return out;
}

type Value = unknown;

/** A reference as written: the root name and the chain of properties and method calls after it. */
interface Reference {
  readonly kind: 'ref';
  readonly source: string;
  readonly root: string;
  readonly chain: ReadonlyArray<{ readonly name: string; readonly args?: readonly Expression[] }>;
}

type Expression =
  | Reference
  | { readonly kind: 'literal'; readonly value: Value }
  | { readonly kind: 'not'; readonly operand: Expression }
  | { readonly kind: 'binary'; readonly op: string; readonly left: Expression; readonly right: Expression };

const IDENTIFIER = /^[a-zA-Z][a-zA-Z0-9_-]*/;
/** Velocity 1.7 gobbles the newline after a directive that ends its line. */
const LINE_END = /^[ \t]*\r?\n/;

class Renderer {
  private pos = 0;
  private readonly vars = new Map<string, Value>();
  private statusOverride: number | undefined;
  private readonly payload: Value;

  constructor(
    private readonly template: string,
    private readonly input: MappingInput,
  ) {
    try {
      this.payload = JSON.parse(input.body);
    } catch {
      this.payload = undefined;
    }
  }

  render(): Rendered {
    const output = this.block(true);
    if (this.pos < this.template.length) throw this.error('unexpected directive');
    return { output, ...(this.statusOverride !== undefined ? { statusOverride: this.statusOverride } : {}) };
  }

  /** Renders up to an `#elseif`, `#else` or `#end` (left unread), or the end. */
  private block(emit: boolean): string {
    let out = '';
    while (this.pos < this.template.length) {
      const rest = this.template.slice(this.pos);
      if (rest.startsWith('##')) {
        const newline = rest.indexOf('\n');
        this.pos += newline === -1 ? rest.length : newline + 1;
      } else if (/^#(elseif\b|else\b|end\b|\{else\}|\{end\})/.test(rest)) {
        return out;
      } else if (/^#set\s*\(/.test(rest)) {
        this.pos += rest.indexOf('(') + 1;
        const target = this.reference();
        this.skipSpace();
        this.expect('=');
        const value = this.expression();
        this.skipSpace();
        this.expect(')');
        this.gobbleLineEnd();
        if (emit) this.assign(target, this.evaluate(value));
      } else if (/^#if\s*\(/.test(rest)) {
        out += this.conditional(emit);
      } else if (rest.startsWith('$')) {
        const start = this.pos;
        const ref = this.tryReference();
        if (!ref) {
          if (emit) out += '$';
          this.pos = start + 1;
        } else if (emit) {
          const value = this.evaluate(ref);
          out += value === undefined || value === null ? ref.source : stringOf(value);
        }
      } else if (rest.startsWith('#') && /^#[a-zA-Z{]/.test(rest)) {
        throw this.error('a directive this renderer does not know');
      } else {
        const next = rest.slice(1).search(/[$#]/);
        const text = next === -1 ? rest : rest.slice(0, next + 1);
        if (emit) out += text;
        this.pos += text.length;
      }
    }
    return out;
  }

  private conditional(emit: boolean): string {
    let out = '';
    let taken = false;
    // #if( ... ) then any #elseif( ... ), an #else, and #end.
    this.pos += this.template.slice(this.pos).indexOf('(') + 1;
    let condition = this.expression();
    this.skipSpace();
    this.expect(')');
    this.gobbleLineEnd();
    for (;;) {
      const run = emit && !taken && truthy(this.evaluate(condition));
      const body = this.block(run);
      if (run) {
        out += body;
        taken = true;
      }
      const rest = this.template.slice(this.pos);
      if (/^#elseif\s*\(/.test(rest)) {
        this.pos += rest.indexOf('(') + 1;
        condition = this.expression();
        this.skipSpace();
        this.expect(')');
        this.gobbleLineEnd();
      } else if (/^#(else\b|\{else\})/.test(rest)) {
        this.pos += rest.startsWith('#{') ? 7 : 5;
        this.gobbleLineEnd();
        const elseBody = this.block(emit && !taken);
        if (emit && !taken) out += elseBody;
        this.closeEnd();
        return out;
      } else {
        this.closeEnd();
        return out;
      }
    }
  }

  private closeEnd(): void {
    const rest = this.template.slice(this.pos);
    const match = /^#(end\b|\{end\})/.exec(rest);
    if (!match) throw this.error('#if without #end');
    this.pos += match[0].length;
    this.gobbleLineEnd();
  }

  private assign(target: Reference, value: Value): void {
    // Velocity 1.7: a null right-hand side leaves the variable as it was.
    if (value === undefined || value === null) return;
    const path = [target.root, ...target.chain.map((c) => c.name)].join('.');
    if (target.chain.some((c) => c.args)) throw this.error(`cannot assign to a method call: ${target.source}`);
    if (path === 'context.responseOverride.status') {
      if (typeof value !== 'number') throw this.error(`status override must be a number, got ${JSON.stringify(value)}`);
      this.statusOverride = value;
    } else if (target.chain.length === 0 && !['input', 'util', 'context'].includes(target.root)) {
      this.vars.set(target.root, value);
    } else {
      throw this.error(`assignment to ${path} is not in this renderer's subset`);
    }
  }

  private evaluate(expression: Expression): Value {
    switch (expression.kind) {
      case 'literal':
        return expression.value;
      case 'not':
        return !truthy(this.evaluate(expression.operand));
      case 'binary': {
        if (expression.op === '&&') return truthy(this.evaluate(expression.left)) && truthy(this.evaluate(expression.right));
        if (expression.op === '||') return truthy(this.evaluate(expression.left)) || truthy(this.evaluate(expression.right));
        return compare(expression.op, this.evaluate(expression.left), this.evaluate(expression.right));
      }
      case 'ref':
        return this.resolve(expression);
    }
  }

  private resolve(ref: Reference): Value {
    const args = (i: number) => (ref.chain[i].args ?? []).map((a) => this.evaluate(a));
    const call = (i: number, name: string) => ref.chain[i]?.name === name && ref.chain[i].args !== undefined;
    const prop = (i: number, name: string) => ref.chain[i]?.name === name && ref.chain[i].args === undefined;
    switch (ref.root) {
      case 'input':
        if (ref.chain.length === 1 && prop(0, 'body')) return this.input.body;
        if (ref.chain.length === 1 && call(0, 'path')) return jsonPath(this.payload, String(args(0)[0]));
        if (ref.chain.length === 1 && call(0, 'json')) return JSON.stringify(jsonPath(this.payload, String(args(0)[0])) ?? null);
        break;
      case 'util':
        if (ref.chain.length === 1 && call(0, 'escapeJavaScript')) {
          const value = args(0)[0];
          return value === undefined || value === null ? undefined : escapeJavaScript(stringOf(value));
        }
        break;
      case 'context':
        if (ref.chain.length === 1 && prop(0, 'requestId')) return this.input.requestId;
        if (ref.chain.length === 2 && prop(0, 'responseOverride') && prop(1, 'status')) return this.statusOverride;
        break;
      default:
        if (ref.chain.length === 0) return this.vars.get(ref.root);
    }
    throw this.error(`${ref.source} is not in this renderer's subset`);
  }

  // --- parsing ---

  private tryReference(): Reference | undefined {
    const start = this.pos;
    let rest = this.template.slice(this.pos);
    const formal = rest.startsWith('${');
    const head = (formal ? /^\$\{/ : /^\$/).exec(rest)!;
    rest = rest.slice(head[0].length);
    const root = IDENTIFIER.exec(rest);
    if (!root) return undefined;
    this.pos += head[0].length + root[0].length;
    const chain: Array<{ name: string; args?: Expression[] }> = [];
    for (;;) {
      const after = this.template.slice(this.pos);
      const member = /^\.([a-zA-Z][a-zA-Z0-9_]*)/.exec(after);
      if (!member) break;
      this.pos += member[0].length;
      if (this.template[this.pos] === '(') {
        this.pos += 1;
        const args: Expression[] = [];
        this.skipSpace();
        if (this.template[this.pos] !== ')') {
          for (;;) {
            args.push(this.expression());
            this.skipSpace();
            if (this.template[this.pos] === ',') {
              this.pos += 1;
              continue;
            }
            break;
          }
        }
        this.expect(')');
        chain.push({ name: member[1], args });
      } else {
        chain.push({ name: member[1] });
      }
    }
    if (formal) this.expect('}');
    return { kind: 'ref', source: this.template.slice(start, this.pos), root: root[0], chain };
  }

  private reference(): Reference {
    this.skipSpace();
    const ref = this.tryReference();
    if (!ref) throw this.error('a reference');
    return ref;
  }

  private expression(): Expression {
    return this.or();
  }

  private or(): Expression {
    let left = this.and();
    while (this.operator(['||'])) left = { kind: 'binary', op: '||', left, right: this.and() };
    return left;
  }

  private and(): Expression {
    let left = this.comparison();
    while (this.operator(['&&'])) left = { kind: 'binary', op: '&&', left, right: this.comparison() };
    return left;
  }

  private comparison(): Expression {
    const left = this.unary();
    const op = this.operator(['==', '!=', '>=', '<=', '>', '<']);
    return op ? { kind: 'binary', op, left, right: this.unary() } : left;
  }

  private unary(): Expression {
    if (this.operator(['!'])) return { kind: 'not', operand: this.unary() };
    this.skipSpace();
    const rest = this.template.slice(this.pos);
    if (rest.startsWith('(')) {
      this.pos += 1;
      const inner = this.expression();
      this.skipSpace();
      this.expect(')');
      return inner;
    }
    const number = /^-?\d+(\.\d+)?/.exec(rest);
    if (number) {
      this.pos += number[0].length;
      return { kind: 'literal', value: Number(number[0]) };
    }
    const string = /^'([^']*)'|^"([^"]*)"/.exec(rest);
    if (string) {
      this.pos += string[0].length;
      return { kind: 'literal', value: string[1] ?? string[2] };
    }
    const keyword = /^(true|false)\b/.exec(rest);
    if (keyword) {
      this.pos += keyword[0].length;
      return { kind: 'literal', value: keyword[0] === 'true' };
    }
    if (rest.startsWith('$')) return this.reference();
    throw this.error('an operand');
  }

  private operator(ops: readonly string[]): string | undefined {
    this.skipSpace();
    const rest = this.template.slice(this.pos);
    // `!` alone, not the start of `!=`.
    const op = ops.find((o) => rest.startsWith(o) && !(o === '!' && rest.startsWith('!=')));
    if (op) this.pos += op.length;
    return op;
  }

  private skipSpace(): void {
    while (/\s/.test(this.template[this.pos] ?? '')) this.pos += 1;
  }

  private expect(text: string): void {
    if (!this.template.startsWith(text, this.pos)) throw this.error(`'${text}'`);
    this.pos += text.length;
  }

  private gobbleLineEnd(): void {
    const match = LINE_END.exec(this.template.slice(this.pos));
    if (match) this.pos += match[0].length;
  }

  private error(what: string): Error {
    return new Error(`mapping template, at ${this.pos}: ${what}: ${JSON.stringify(this.template.slice(this.pos, this.pos + 40))}`);
  }
}

/** `$` or `$.a.b` of a JSON value. */
function jsonPath(value: Value, path: string): Value {
  if (path === '$') return value;
  if (!path.startsWith('$.')) throw new Error(`JSONPath ${path} is not in this renderer's subset`);
  let current = value;
  for (const key of path.slice(2).split('.')) {
    if (typeof current !== 'object' || current === null || Array.isArray(current)) return undefined;
    current = (current as Record<string, Value>)[key];
  }
  return current;
}

/** Velocity 1.7: numbers compare as numbers; other types of different kinds by their strings. */
function compare(op: string, left: Value, right: Value): boolean {
  if (op === '==' || op === '!=') {
    if (left === undefined || left === null || right === undefined || right === null) return op === '==' ? left === right : left !== right;
    const equal = typeof left === 'number' && typeof right === 'number' ? left === right : stringOf(left) === stringOf(right);
    return op === '==' ? equal : !equal;
  }
  if (typeof left !== 'number' || typeof right !== 'number') return false;
  switch (op) {
    case '<':
      return left < right;
    case '<=':
      return left <= right;
    case '>':
      return left > right;
    default:
      return left >= right;
  }
}

function truthy(value: Value): boolean {
  return value !== undefined && value !== null && value !== false;
}

/** How Velocity writes a value: Java's toString (a JSON object or array as the JSON it came as, here). */
function stringOf(value: Value): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
