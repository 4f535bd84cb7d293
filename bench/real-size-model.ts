/** The command line of the real-size model generators (bench/real-size-*.ts): `[--out DIR]`, prints the folder. */
import path from 'node:path';

export function generateFromCommandLine(ensure: (outDir: string) => Promise<string>): void {
  const at = process.argv.indexOf('--out');
  ensure(at > 0 ? process.argv[at + 1]! : path.join(__dirname, '..', '.cache', 'models'))
    .then((dir) => process.stdout.write(`${dir}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}
