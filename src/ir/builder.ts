// Builds a Graph node by node, running each op's shape rule as the node is added, so that a
// shape error surfaces at the node that caused it.
import type { SourceLoc } from '../util/diagnostics.js';
import { elementsWithinLimit, MAX_TENSOR_ELEMENTS } from './limits.js';
import { ShapeError } from './op.js';
import { getOp } from './registry.js';
import type { Attrs, Graph, GraphOutput, Node, ParamSpec, TensorType, ValueId, WeightAlias } from './types.js';

export interface NodeRequest {
  readonly op: string;
  readonly inputs: readonly ValueId[];
  readonly attrs: Attrs;
  readonly name: string;
  readonly loc?: SourceLoc;
  /** The patch mask of the sparse region the node is in (TensorType.mask). */
  readonly mask?: ValueId;
}

/** A weight key that two nodes both claim; the elaborator turns it into a located error. */
export class DuplicateWeightError extends Error {
  constructor(
    readonly key: string,
    readonly firstLoc: SourceLoc | undefined,
  ) {
    super(`weight '${key}' is already defined`);
  }
}

export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly params = new Map<string, ParamSpec>();
  private readonly paramOwners = new Map<string, SourceLoc | undefined>();

  constructor(private readonly name: string) {}

  typeOf(id: ValueId): TensorType {
    return this.nodes[id].type;
  }

  /** Adds a node; throws ShapeError from the op's shape rule or DuplicateWeightError. */
  add(request: NodeRequest): ValueId {
    const op = getOp(request.op);
    const inferred = op.infer(request.inputs.map((id) => this.typeOf(id)), request.attrs);
    const type = request.mask === undefined ? inferred : { ...inferred, mask: request.mask };
    if (!elementsWithinLimit(type.shape)) {
      throw new ShapeError(`${request.op}'s output [${type.shape.join(', ')}] has more than ${MAX_TENSOR_ELEMENTS} elements, more than a target can index`);
    }
    const params: Record<string, string> = {};
    const decls = op.params(request.attrs);
    for (const decl of decls) {
      if (!elementsWithinLimit(decl.shape)) {
        throw new ShapeError(`${request.op}'s weight '${decl.suffix || request.name}' [${decl.shape.join(', ')}] has more than ${MAX_TENSOR_ELEMENTS} elements, more than a target can index`);
      }
    }
    for (const decl of decls) {
      const key = decl.suffix === '' ? request.name : request.name === '' ? decl.suffix : `${request.name}.${decl.suffix}`;
      if (this.params.has(key)) throw new DuplicateWeightError(key, this.paramOwners.get(key));
    }
    for (const decl of decls) {
      const key = decl.suffix === '' ? request.name : request.name === '' ? decl.suffix : `${request.name}.${decl.suffix}`;
      this.params.set(key, { key, shape: decl.shape, dtype: 'f32', init: decl.init });
      this.paramOwners.set(key, request.loc);
      params[decl.role] = key;
    }
    const id = this.nodes.length;
    this.nodes.push({ id, op: request.op, inputs: request.inputs, attrs: request.attrs, params, type, name: request.name, loc: request.loc });
    return id;
  }

  /** `outputs`: a value id for a model's single result (named `output`), or named values. */
  build(outputs: ValueId | readonly GraphOutput[], aliases: readonly WeightAlias[] = []): Graph {
    const named = typeof outputs === 'number' ? [{ name: 'output', id: outputs }] : [...outputs];
    return { name: this.name, nodes: [...this.nodes], outputs: named, params: new Map(this.params), aliases };
  }
}
