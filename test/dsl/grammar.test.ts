// The lexer and parser skip chevrotain's definition checks at run time (they cost every run and
// depend only on the grammar); here they run, so a grammar change that breaks them fails.
import { describe, expect, it } from 'vitest';
import { createLexer } from '../../src/dsl/lexer.js';
import { CnxParser } from '../../src/dsl/parser.js';

describe('grammar', () => {
  it('passes chevrotain’s token checks', () => {
    const lexer = createLexer({ validate: true });
    expect(lexer.lexerDefinitionErrors).toEqual([]);
    expect(lexer.tokenize('model m = F(depths=[1, 2])').errors).toEqual([]);
  });

  it('passes chevrotain’s grammar checks (performSelfAnalysis throws on a broken grammar)', () => {
    expect(() => new CnxParser({ validate: true })).not.toThrow();
  });
});
