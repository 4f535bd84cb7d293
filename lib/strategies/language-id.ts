/**
 * Caption language identification with Google's CLD3 (cld3-asm: the model compiled to WebAssembly, shipped in
 * the npm package, so nothing is downloaded at run time). DataComp's basic filter used fastText lid.176; CLD3 is
 * the maintained, offline-installable equivalent in JS and agrees on plain English captions.
 */
import { loadModule } from 'cld3-asm';

type Identifier = { findLanguage(text: string): { language: string; probability: number; is_reliable: boolean } };

let identifier: Promise<Identifier> | undefined;

function cld3(): Promise<Identifier> {
  identifier ??= loadModule().then((factory) => factory.create(0, 1000) as Identifier);
  return identifier;
}

/** ISO 639-1 code of the text's most likely language ('und' for empty text). */
export async function detectLanguage(text: string): Promise<string> {
  if (!text.trim()) return 'und';
  return (await cld3()).findLanguage(text).language;
}
