/** A model folder's content identity: what annotations are addressed by. */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { modelIdentity } from '../../../lib/models/identity';
import { tempDir } from '../../helpers/paths';

describe('model identity', () => {
  it('hashes every file, follows symbolic links (a Hugging Face cache snapshot), and changes with any byte', async () => {
    const dir = tempDir();
    const real = path.join(dir, 'real');
    await mkdir(path.join(real, 'onnx'), { recursive: true });
    await writeFile(path.join(real, 'config.json'), '{"model_type": "clip"}');
    await writeFile(path.join(real, 'onnx', 'model.onnx'), Buffer.alloc(1000, 7));
    const a = await modelIdentity(real);
    expect(Object.keys(a.files).sort()).toEqual(['config.json', path.join('onnx', 'model.onnx')]);

    // the same files through links (blobs elsewhere, as in ~/.cache/huggingface/hub/.../snapshots)
    const linked = path.join(dir, 'snapshot');
    await mkdir(linked);
    await symlink(path.join(real, 'config.json'), path.join(linked, 'config.json'));
    await symlink(path.join(real, 'onnx'), path.join(linked, 'onnx'));
    expect(await modelIdentity(linked)).toEqual(a);

    await writeFile(path.join(real, 'onnx', 'model.onnx'), Buffer.alloc(1000, 8)); // same size, other bytes
    const b = await modelIdentity(real);
    expect(b.id).not.toBe(a.id);
    expect((await modelIdentity(path.join(dir, 'missing'))).files).toEqual({});
  });
});
