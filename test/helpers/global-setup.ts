/**
 * Once per `jest` run: generate the tiny models (a no-op when already there). Tests that need the Go-built
 * tools (Temporal CLI, fake-gcs-server) FAIL with the install command when they are missing — never skip.
 */
import * as path from 'node:path';
import { generateTinyModels } from '../../lib/models/tiny/generate';

export default async function globalSetup(): Promise<void> {
  await generateTinyModels(path.resolve(__dirname, '..', '..', '.cache', 'models'));
}
