// The bundled zoo as a new user meets it: `convc models`, zoo names from any folder, imports of a
// zoo family from the user's own files, and "did you mean" for a misspelt name.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { loadProgram } from '../../src/dsl/load.js';
import { zooFileFor } from '../../src/util/zoo.js';
import { captureIo, repoPath } from '../helpers.js';
import { convcChild } from './child.js';

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

const scratch = () => mkdtempSync(join(tmpdir(), 'convc-zoo-'));

describe('convc models', () => {
  it('lists the 21 variants with the figures convc inspect reports', async () => {
    const { code, out } = await convc('models', '--json');
    expect(code).toBe(0);
    const listing = JSON.parse(out);
    expect(listing.directory).toBe(repoPath('models'));
    expect(listing.families).toEqual(['convnextv1.cnx', 'convnextv2.cnx', 'fcmae.cnx']);
    expect(listing.models).toHaveLength(21);
    expect(listing.models.filter((m: { family: string }) => m.family === 'FCMAE')).toHaveLength(8);
    expect(listing.models.map((m: { file: string }) => m.file)).toContain('convnextv2-huge.cnx');
    const atto = listing.models.find((m: { model: string }) => m.model === 'convnextv2-atto');
    expect(atto).toMatchObject({ file: 'convnextv2-atto.cnx', family: 'ConvNeXtV2', path: repoPath('models/convnextv2-atto.cnx') });
    for (const variant of ['convnextv2-atto', 'convnextv1-tiny']) {
      const inspected = JSON.parse((await convc('inspect', repoPath(`models/${variant}.cnx`), '--json')).out);
      const listed = listing.models.find((m: { model: string }) => m.model === variant);
      expect([listed.params, listed.macs], variant).toEqual([inspected.params, inspected.macs]);
    }
    // Smallest first within a family.
    const v2 = listing.models.filter((m: { family: string }) => m.family === 'ConvNeXtV2').map((m: { model: string }) => m.model);
    expect(v2[0]).toBe('convnextv2-atto');
    expect(v2.at(-1)).toBe('convnextv2-huge');
  });

  it('prints a table and has its own help', async () => {
    const { code, out } = await convc('models');
    expect(code).toBe(0);
    expect(out).toMatch(/^convnextv2-huge\.cnx\s+convnextv2-huge\s+ConvNeXtV2\s+660\.29M\s+114\.92G$/m);
    expect(out).toMatch(/^convnextv1-tiny\.cnx\s+convnextv1-tiny\s+ConvNeXtV1\s+28\.59M\s+4\.46G$/m);
    const help = await convc('models', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^convc models \[--json\]/);
    expect((await convc('help', 'models')).out).toBe(help.out);
    expect((await convc('--help')).out).toMatch(/^ {2}models {4}list the bundled model zoo/m);
    const extra = await convc('models', 'convnextv2-atto.cnx');
    expect(extra.code).toBe(2);
    expect(extra.err).toMatch(/convc models takes no file/);
  });
});

describe('zoo names', () => {
  it('take a bare name, with or without .cnx, or models/NAME, and nothing else', () => {
    expect(zooFileFor('convnextv2-base.cnx')).toBe(repoPath('models/convnextv2-base.cnx'));
    expect(zooFileFor('convnextv2-base')).toBe(repoPath('models/convnextv2-base.cnx'));
    expect(zooFileFor('models/convnextv2.cnx')).toBe(repoPath('models/convnextv2.cnx'));
    expect(zooFileFor('../models/convnextv2.cnx')).toBe(repoPath('models/convnextv2.cnx'));
    expect(zooFileFor('elsewhere/convnextv2-base.cnx')).toBeUndefined();
    expect(zooFileFor('/abs/models/convnextv2-base.cnx')).toBeUndefined();
    expect(zooFileFor('convnextv3-base.cnx')).toBeUndefined();
  });

  it('resolve a missing entry file to the zoo and say so once', () => {
    const notes: string[] = [];
    // The tests run in the repository root, where convnextv2-atto.cnx is models/convnextv2-atto.cnx.
    const program = loadProgram('convnextv2-atto.cnx', undefined, { note: (line) => notes.push(line) });
    expect(program.entryModels).toEqual(['convnextv2-atto']);
    expect(notes).toEqual(["note: 'convnextv2-atto.cnx' is not a file here; using the bundled models/convnextv2-atto.cnx"]);
  });

  it('work from any folder, and in an import of the user own file', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'my-net.cnx'), 'import "convnextv2.cnx"\nmodel my-net = ConvNeXtV2(depths=[1, 1, 2, 1], dims=[8, 16, 32, 64], classes=10)\n');
    // A file of the user's with a zoo name wins over the zoo.
    writeFileSync(join(dir, 'convnextv2-atto.cnx'), 'import "../models/convnextv2.cnx"\nmodel local-atto = ConvNeXtV2(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])\n');
    const base = convcChild(['inspect', 'convnextv2-base', '--json'], { cwd: dir });
    expect(base.status, base.stderr).toBe(0);
    expect(JSON.parse(base.stdout).model).toBe('convnextv2-base');
    expect(base.stderr).toBe("note: 'convnextv2-base' is not a file here; using the bundled models/convnextv2-base.cnx\n");

    const mine = convcChild(['inspect', 'my-net.cnx', '--json'], { cwd: dir });
    expect(mine.status, mine.stderr).toBe(0);
    expect(JSON.parse(mine.stdout)).toMatchObject({ model: 'my-net', output: [1, 10] });
    expect(mine.stderr).toBe("note: 'convnextv2.cnx' is not a file next to my-net.cnx; using the bundled models/convnextv2.cnx\n");

    const local = convcChild(['inspect', 'convnextv2-atto.cnx', '--json'], { cwd: dir });
    expect(local.status, local.stderr).toBe(0);
    expect(JSON.parse(local.stdout).model).toBe('local-atto');
    expect(local.stderr).toBe("note: '../models/convnextv2.cnx' is not a file next to convnextv2-atto.cnx; using the bundled models/convnextv2.cnx\n");
  }, 120_000);

  it('suggest the closest zoo file for a misspelt name', async () => {
    const { code, err } = await convc('compile', 'convnextv2-bsae.cnx');
    expect(code).toBe(2);
    expect(err).toMatch(/^error: cannot read 'convnextv2-bsae\.cnx': no such file; did you mean 'convnextv2-base\.cnx' from the bundled zoo\?/);
    const far = await convc('inspect', 'resnet50.cnx');
    expect(far.err).toMatch(/cannot read 'resnet50\.cnx': no such file\n/);
  });
});
