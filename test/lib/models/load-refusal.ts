/** Test helper: the error a model load is refused with. */
import { InputError } from '../../../lib/errors';

/**
 * The InputError a load fails with. The test fails if the load fails otherwise, or succeeds (the loaded model is
 * released first, so a wrongly accepted folder leaks no session).
 */
export async function loadRefusal(load: Promise<{ release(): Promise<void> }>): Promise<InputError> {
  let result: { release(): Promise<void> } | undefined;
  try {
    result = await load;
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  await result.release();
  throw new Error('expected the load to be refused');
}
