// Assembles a kernel's math and a schedule into one WGSL module, with the header comment that
// says what it computes.
import type { KernelSpec } from './program.js';
import type { Schedule } from './schedule.js';

/** Comments may quote user-chosen names; keep them on one line and unable to end the comment. */
export function commentSafe(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/\*\//g, '* /').replace(/[^\x20-\x7e]/g, '?');
}

function u32Literal(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) throw new Error(`internal: ${value} is not a u32`);
  return `${value}u`;
}

/** The shortest round-tripping decimal, with a point or exponent so WGSL reads it as f32. */
export function f32Literal(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`internal: ${value} has no WGSL literal`);
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

export function renderKernel(spec: KernelSpec, schedule: Schedule, covers: string): string {
  const lines: string[] = [];
  lines.push(`// ${spec.name}: ${commentSafe(spec.summary)}`);
  lines.push(`// Computes IR node(s): ${commentSafe(covers)}`);
  lines.push(
    spec.cooperative
      ? `// Layout: activations NHWC, f32. ${spec.cooperative.groups} cooperating workgroups.`
      : `// Layout: activations NHWC, f32. ${spec.invocations} invocations.`,
  );
  lines.push('');
  spec.bindings.forEach((b, i) => {
    lines.push(`@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<f32>;`);
  });
  lines.push('');
  for (const [name, value] of Object.entries(spec.constants)) lines.push(`const ${name} = ${u32Literal(value)};`);
  for (const [name, value] of Object.entries(spec.floats ?? {})) lines.push(`const ${name} = ${f32Literal(value)};`);
  lines.push(`const INVOCATIONS = ${spec.invocations}u;`);
  lines.push(`const WORKGROUP_SIZE = ${schedule.workgroupSize}u;`);
  for (const helper of spec.helpers ?? []) lines.push('', helper.trim());
  lines.push('');
  if (spec.cooperative) {
    for (const declaration of spec.cooperative.workgroupVars) lines.push(`var<workgroup> ${declaration};`);
    lines.push('');
    lines.push(`@compute @workgroup_size(${schedule.workgroupSize})`);
    lines.push(`fn ${spec.name}(@builtin(workgroup_id) workgroup: vec3u, @builtin(local_invocation_index) local: u32, @builtin(num_workgroups) groups: vec3u) {`);
    lines.push('  let group = workgroup.y * groups.x + workgroup.x;');
    for (const line of spec.body.trim().split('\n')) lines.push(`  ${line.trimEnd()}`.replace(/^\s+$/, ''));
    lines.push('}');
    return `${lines.join('\n')}\n`;
  }
  lines.push(`fn compute(index: u32) {`);
  for (const line of spec.body.trim().split('\n')) lines.push(`  ${line.trimEnd()}`.replace(/^\s+$/, ''));
  lines.push('}');
  lines.push('');
  lines.push(`@compute @workgroup_size(${schedule.workgroupSize})`);
  lines.push(`fn ${spec.name}(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32, @builtin(num_workgroups) groups: vec3u) {`);
  lines.push('  let index = (group.y * groups.x + group.x) * WORKGROUP_SIZE + local;');
  lines.push('  if (index < INVOCATIONS) {');
  lines.push('    compute(index);');
  lines.push('  }');
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
