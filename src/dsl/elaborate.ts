// Elaboration: runs a model line's family with its arguments, unrolling loops and blocks into
// an IR graph whose shapes follow from the input size. Weight names are built from the scope
// paths, so they come out as the official checkpoints spell them.
import type { Arg, DefinitionDecl, Path, Stmt } from './ast.js';
import { matchArgs } from './arguments.js';
import { callsGraph, definitionParameters, opParameters } from './check.js';
import { where, type Program } from './load.js';
import { Budget, Env, evaluate, expectBool, show, typeName, type Value } from './values.js';
import { DuplicateWeightError, GraphBuilder } from '../ir/builder.js';
import { ShapeError, type AttrSpec } from '../ir/op.js';
import { opRegistry } from '../ir/registry.js';
import { MAX_GRAPH_NODES } from '../ir/limits.js';
import type { AttrValue, Graph, GraphOutput, ValueId, WeightAlias } from '../ir/types.js';
import { patchGrid } from '../io/patch-mask.js';
import { verifyGraph } from '../ir/verify.js';
import { UserError, userError, type SourceLoc } from '../util/diagnostics.js';

export interface InputSize {
  readonly batch: number;
  readonly height: number;
  readonly width: number;
}

export const defaultInputSize: InputSize = { batch: 1, height: 224, width: 224 };

/** Iterations of one `for` loop; a stage of a real network has tens of blocks. */
export const MAX_LOOP_ITERATIONS = 100_000;
/** Blocks calling blocks: real models nest two or three deep, so deeper is runaway recursion. */
export const MAX_CALL_DEPTH = 64;
/** Block calls listed in an error's notes; the rest of a deep chain is summarised in one line. */
const MAX_STACK_NOTES = 8;
/**
 * Integer attributes (channels, kernel, stride, padding, groups) and input sizes: WGSL indexes
 * with u32 and computes sizes in i32 in places, so anything past 2^31 - 1 could never run.
 */
export const MAX_ATTR_INT = 2 ** 31 - 1;
/**
 * Characters in one weight name (`stages.3.2.pwconv1.weight` is 25). Every node keeps its name,
 * so megabyte-long names from string segments would multiply into gigabytes.
 */
export const MAX_WEIGHT_NAME_LENGTH = 1024;
/** The largest finite f32: a float attribute beyond it (eps=1e39) is Infinity on every target. */
export const MAX_F32 = 3.4028234663852886e38;
/** The smallest normal f32: GPUs may flush anything smaller (eps=1e-45) to zero. */
export const MIN_NORMAL_F32 = 1.1754943508222875e-38;

/** Picks the model to build: the one named, or the only one the entry file defines. */
export function selectModel(program: Program, name: string | undefined, file: string): string {
  if (name !== undefined) {
    if (!program.models.has(name)) {
      const known = [...program.models.keys()];
      throw userError(`no model '${name}' in ${file}${known.length ? `; models: ${known.join(', ')}` : ''}`);
    }
    return name;
  }
  const candidates = program.entryModels.length > 0 ? program.entryModels : [...program.models.keys()];
  if (candidates.length === 0) throw userError(`${file} defines no model; add a line such as \`model my-net = ConvNeXtV2(depths=[2,2,6,2], dims=[40,80,160,320])\``);
  if (candidates.length > 1) throw userError(`${file} defines several models (${candidates.join(', ')}); choose one with --model NAME`);
  return candidates[0];
}

interface Frame {
  readonly description: string;
  readonly loc: SourceLoc;
}

class Elaborator {
  private readonly builder: GraphBuilder;
  private readonly aliases: WeightAlias[] = [];
  private readonly frames: Frame[] = [];
  private current: ValueId | undefined;
  /** The model's named results (`output name`); none means the last value, named `output`. */
  private readonly outputs: GraphOutput[] = [];
  /** Graph inputs made so far, by name (`input`, `mask`). */
  private readonly inputs = new Set<string>();
  /** Inside `sparse(mask) { ... }`: the patch mask every op's result is masked with. */
  private sparseMask: ValueId | undefined;
  private readonly budget = new Budget();
  private nodeCount = 0;

  constructor(
    private readonly program: Program,
    private readonly modelName: string,
    private readonly size: InputSize,
  ) {
    this.builder = new GraphBuilder(modelName);
  }

  /** A located error with the chain of block calls that led to it. */
  private fail(message: string, loc: SourceLoc | undefined, notes: string[] = []): never {
    const stack = [...this.frames].reverse().map((f) => `${f.description} at ${where(f.loc)}`);
    if (stack.length > MAX_STACK_NOTES) {
      const hidden = stack.length - MAX_STACK_NOTES;
      stack.splice(MAX_STACK_NOTES - 2, hidden, `... ${hidden} more block calls ...`);
    }
    throw userError(message, loc, [...notes, ...stack]);
  }

  /** Re-throws evaluation errors with the call stack attached. */
  private guard<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      if (error instanceof UserError && this.frames.length > 0 && error.diagnostics.length === 1) {
        const d = error.diagnostics[0];
        this.fail(d.message, d.loc, [...(d.notes ?? [])]);
      }
      throw error;
    }
  }

  build(): Graph {
    const model = this.program.models.get(this.modelName)!;
    const family = this.program.definitions.get(model.family)!;
    this.frames.push({ description: `in model '${model.name}'`, loc: model.nameLoc });
    this.checkSize(model.nameLoc);
    const env = this.bindArguments(family, model.args, new Env(undefined, this.budget), model.familyLoc);
    this.runBody(family.body, env, []);
    if (this.current === undefined) this.fail(`family '${family.name}' computes nothing; it must start with \`input(channels)\``, family.nameLoc);
    this.frames.pop();
    const graph = this.builder.build(this.outputs.length > 0 ? this.outputs : this.current, this.aliases);
    verifyGraph(graph);
    return graph;
  }

  /** Batch and image size come from the command line; they must fit the targets' integers. */
  private checkSize(loc: SourceLoc): void {
    for (const [what, value] of [['batch', this.size.batch], ['height', this.size.height], ['width', this.size.width]] as const) {
      if (!Number.isSafeInteger(value) || value < 1 || value > MAX_ATTR_INT) {
        this.fail(`the input ${what} must be an integer from 1 to ${MAX_ATTR_INT}, got ${value}`, loc);
      }
    }
  }

  private bindArguments(def: DefinitionDecl, args: readonly Arg[], callerEnv: Env, callLoc: SourceLoc): Env {
    const { bound } = matchArgs(args, definitionParameters(def), def.name, callLoc);
    const env = new Env(undefined, this.budget);
    for (const param of def.params) {
      const expr = bound.get(param.name);
      const value = this.guard(() => (expr ? evaluate(expr, callerEnv) : evaluate(param.default!, env)));
      env.set(param.name, value);
    }
    return env;
  }

  private runBody(body: readonly Stmt[], env: Env, prefix: readonly string[]): void {
    for (const stmt of body) this.run(stmt, env, prefix);
  }

  private run(stmt: Stmt, env: Env, prefix: readonly string[]): void {
    this.guard(() => this.budget.charge(1, stmt.loc));
    switch (stmt.kind) {
      case 'let': {
        const value = stmt.value;
        if (value.kind === 'call' && callsGraph(this.program, value.callee)) {
          this.call({ kind: 'call', callee: value.callee, calleeLoc: value.loc, args: value.args, loc: stmt.loc }, env, prefix);
          const id = this.current!;
          env.set(stmt.name, { t: 'tensor', id, shape: this.builder.typeOf(id).shape });
        } else {
          env.set(stmt.name, this.guard(() => evaluate(value, env)));
        }
        return;
      }
      case 'sparse': {
        if (this.sparseMask !== undefined) this.fail('sparse regions do not nest; this one is inside another', stmt.loc);
        const mask = this.tensorArgument(this.guard(() => evaluate(stmt.mask, env)), "sparse's mask", stmt.mask.loc);
        // The region's input is zeroed at masked patches, then every op's result (addNode).
        this.addNode('apply_mask', [this.requireInput(stmt.loc), mask], {}, '', stmt.loc, mask);
        this.sparseMask = mask;
        try {
          this.runBody(stmt.body, env.child(), prefix);
        } finally {
          this.sparseMask = undefined;
        }
        return;
      }
      case 'output': {
        const earlier = this.outputs.find((o) => o.name === stmt.name);
        if (earlier) this.fail(`the model already has an output named '${stmt.name}'`, stmt.nameLoc);
        this.outputs.push({ name: stmt.name, id: this.requireInput(stmt.loc) });
        return;
      }
      case 'assert': {
        const ok = this.guard(() => expectBool(evaluate(stmt.condition, env), stmt.condition.loc, 'assert'));
        if (!ok) this.fail(stmt.message ?? 'assertion failed', stmt.loc);
        return;
      }
      case 'alias':
        this.aliases.push({ from: stmt.from, to: stmt.to, ...(stmt.layout ? { layout: stmt.layout.name } : {}), loc: stmt.loc });
        return;
      case 'if': {
        const taken = this.guard(() => expectBool(evaluate(stmt.condition, env), stmt.condition.loc, "'if'"));
        const branch = taken ? stmt.then : stmt.otherwise;
        if (branch) this.runBody(branch, env.child(), prefix);
        return;
      }
      case 'for': {
        const from = this.guard(() => evaluate(stmt.from, env));
        const to = this.guard(() => evaluate(stmt.to, env));
        if (from.t !== 'int') this.fail(`a loop range needs integers, but its start is ${typeName(from)} (${show(from)})`, stmt.from.loc);
        if (to.t !== 'int') this.fail(`a loop range needs integers, but its end is ${typeName(to)} (${show(to)})`, stmt.to.loc);
        // A reversed range is a mistake (depths=[-5, ...]), not an empty loop.
        if (to.v < from.v) this.fail(`a loop range's end (${to.v}) is before its start (${from.v})`, stmt.to.loc);
        if (to.v - from.v > MAX_LOOP_ITERATIONS) {
          this.fail(`a loop may run at most ${MAX_LOOP_ITERATIONS} times, but ${from.v}..${to.v} is ${to.v - from.v} iterations`, stmt.to.loc);
        }
        for (let i = from.v; i < to.v; i++) {
          const inner = env.child();
          inner.set(stmt.variable, { t: 'int', v: i });
          this.runBody(stmt.body, inner, prefix);
        }
        return;
      }
      case 'scope':
        this.runBody(stmt.body, env.child(), [...prefix, ...this.pathSegments(stmt.path, env)]);
        return;
      case 'residual': {
        const shortcut = this.requireInput(stmt.loc);
        this.runBody(stmt.body, env.child(), prefix);
        this.addNode('add', [shortcut, this.current!], {}, '', stmt.loc);
        return;
      }
      case 'call':
        this.call(stmt, env, prefix);
        return;
    }
  }

  private pathSegments(path: Path, env: Env): string[] {
    return path.segments.map((segment) => {
      if (segment.kind === 'text') return segment.text;
      const value = this.guard(() => evaluate(segment.expr, env));
      if (value.t === 'int' || value.t === 'string') return String(value.v);
      return this.fail(`a name segment must be an integer or a string, but this is ${typeName(value)} (${show(value)})`, segment.loc);
    });
  }

  private requireInput(loc: SourceLoc): ValueId {
    if (this.current === undefined) this.fail('there is no input yet: a family must start with `input(channels)`', loc);
    return this.current;
  }

  private call(stmt: Extract<Stmt, { kind: 'call' }>, env: Env, prefix: readonly string[]): void {
    const path = stmt.path ? this.pathSegments(stmt.path, env) : [];
    const op = opRegistry.get(stmt.callee);
    if (op) {
      const { bound } = matchArgs(stmt.args, opParameters(op.name), op.name, stmt.calleeLoc);
      const attrs: Record<string, AttrValue> = {};
      if (op.graphInput === undefined) this.requireInput(stmt.calleeLoc);
      for (const spec of op.attrs) {
        const expr = bound.get(spec.name);
        attrs[spec.name] = expr ? this.toAttr(this.guard(() => evaluate(expr, env)), spec, op.name, expr.loc) : spec.default!;
      }
      const name = [...prefix, ...path].join('.');
      if (name.length > MAX_WEIGHT_NAME_LENGTH) {
        this.fail(`this weight name is ${name.length} characters long; names may have at most ${MAX_WEIGHT_NAME_LENGTH}`, stmt.path?.loc ?? stmt.calleeLoc);
      }
      if (op.graphInput !== undefined) {
        if (this.inputs.has(op.graphInput)) {
          this.fail(`the model already has ${op.graphInput === 'input' ? 'an input' : `a ${op.graphInput} input`}; \`${op.name}(...)\` may appear once`, stmt.calleeLoc);
        }
        if (this.sparseMask !== undefined) this.fail(`a model's inputs cannot be inside a sparse region`, stmt.calleeLoc);
        this.inputs.add(op.graphInput);
        attrs.shape = this.inputShape(op.name, attrs, stmt.calleeLoc);
        this.addNode(op.name, [], attrs, name, stmt.loc);
        return;
      }
      const tensors = (op.tensorArgs ?? []).map((arg) => {
        const expr = bound.get(arg)!;
        return this.tensorArgument(this.guard(() => evaluate(expr, env)), `${op.name}'s '${arg}'`, expr.loc);
      });
      if (op.params(attrs).length > 0 && path.length === 0) {
        this.fail(`${op.name} has weights, so it needs a name for them: write \`name: ${op.name}(...)\``, stmt.calleeLoc);
      }
      this.addNode(op.name, [this.requireInput(stmt.calleeLoc), ...tensors], attrs, name, stmt.loc);
      return;
    }
    const block = this.program.definitions.get(stmt.callee)!;
    const blockEnv = this.bindArguments(block, stmt.args, env, stmt.calleeLoc);
    // frames[0] is the model line; the rest are block calls.
    if (this.frames.length > MAX_CALL_DEPTH) {
      this.fail(`block calls nest more than ${MAX_CALL_DEPTH} deep; does '${block.name}' call itself, directly or through other blocks?`, stmt.calleeLoc);
    }
    this.frames.push({ description: `in block '${block.name}' called`, loc: stmt.calleeLoc });
    this.runBody(block.body, blockEnv, [...prefix, ...path]);
    this.frames.pop();
  }

  /** The shape of a graph input: the image's from the command line, a patch mask's from it. */
  private inputShape(opName: string, attrs: Record<string, AttrValue>, loc: SourceLoc): number[] {
    const { batch, height, width } = this.size;
    if (opName === 'input') return [batch, attrs.channels as number, height, width];
    const patch = attrs.patch as number;
    if (!(patch >= 1)) this.fail(`${opName}'s patch must be at least 1, got ${patch}`, loc);
    try {
      return [batch, ...patchGrid(height, width, patch)];
    } catch (error) {
      if (error instanceof UserError) this.fail(error.diagnostics[0].message, loc);
      throw error;
    }
  }

  private tensorArgument(value: Value, what: string, loc: SourceLoc): ValueId {
    if (value.t !== 'tensor') this.fail(`${what} needs a tensor (a name bound by \`let x = op(...)\`), but this is ${typeName(value)} (${show(value)})`, loc);
    return value.id;
  }

  private toAttr(value: Value, spec: AttrSpec, opName: string, loc: SourceLoc): AttrValue {
    const what = `${opName}'s '${spec.name}'`;
    const bad = (expected: string): never => this.fail(`${what} needs ${expected}, but this is ${typeName(value)} (${show(value)})`, loc);
    switch (spec.type) {
      case 'int':
        return value.t === 'int' ? this.checkInt(value.v, what, loc) : bad('an integer');
      case 'float':
        if (value.t !== 'int' && value.t !== 'float') return bad('a number');
        // Float attributes become f32 constants in kernels; beyond f32's range they are Infinity.
        if (!Number.isFinite(value.v) || Math.abs(value.v) > MAX_F32) this.fail(`${what} is ${show(value)}, which overflows a 32-bit float (at most ${MAX_F32})`, loc);
        if (value.v !== 0 && Math.abs(value.v) < MIN_NORMAL_F32) this.fail(`${what} is ${show(value)}, which underflows a 32-bit float (GPUs may take it as 0); use 0 or at least ${MIN_NORMAL_F32}`, loc);
        return value.v;
      case 'bool':
        return value.t === 'bool' ? value.v : bad('true or false');
      case 'int-pair':
        if (value.t === 'int') return [this.checkInt(value.v, what, loc), value.v];
        if (value.t === 'list' && value.items.length === 2 && value.items.every((i) => i.t === 'int')) {
          return value.items.map((i) => this.checkInt(i.v as number, what, loc));
        }
        return bad('an integer or a list of two integers');
    }
  }

  private checkInt(v: number, what: string, loc: SourceLoc): number {
    if (Math.abs(v) > MAX_ATTR_INT) this.fail(`${what} is ${v}, beyond what a target can index (at most ${MAX_ATTR_INT} in magnitude)`, loc);
    return v;
  }

  /** Adds a node as the running value; in a sparse region, followed by its masking. */
  private addNode(op: string, inputs: ValueId[], attrs: Record<string, AttrValue>, name: string, loc: SourceLoc, mask = this.sparseMask): void {
    this.addOne(op, inputs, attrs, name, loc, mask);
    if (this.sparseMask !== undefined) this.addOne('apply_mask', [this.current!, this.sparseMask], {}, '', loc, this.sparseMask);
  }

  private addOne(op: string, inputs: ValueId[], attrs: Record<string, AttrValue>, name: string, loc: SourceLoc, mask: ValueId | undefined): void {
    if (++this.nodeCount > MAX_GRAPH_NODES) this.fail(`the model has more than ${MAX_GRAPH_NODES} ops; convc compiles graphs up to that size`, loc);
    try {
      this.current = this.builder.add({ op, inputs, attrs, name, loc, ...(mask !== undefined ? { mask } : {}) });
    } catch (error) {
      if (error instanceof ShapeError) this.fail(error.message, loc);
      if (error instanceof DuplicateWeightError) {
        const first = error.firstLoc;
        // In a loop or a block called twice, the first definition is this very call.
        const again = first !== undefined && where(first) === where(loc);
        const notes = !first
          ? []
          : again
            ? ['this same call made it before, in an earlier loop iteration or block call; make the name differ each time, e.g. `name.{i}: ...`']
            : [`first defined at ${where(first)}`];
        this.fail(`weight '${error.key}' is defined twice; give this call another name`, loc, notes);
      }
      throw error;
    }
  }
}

/** Builds the named model's graph for one input size (the program was checked by loadProgram). */
export function elaborate(program: Program, modelName: string, size: InputSize = defaultInputSize): Graph {
  return new Elaborator(program, modelName, size).build();
}
