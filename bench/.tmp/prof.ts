import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { loadOrgFolder } from '../../appliance/src/config';
import { loadDirectoryFile } from '../../appliance/src/directory';
import { createEngine } from '../../appliance/src/signature';
import { buildBenchMessages, drain } from '../mime';
const ORG = path.resolve(__dirname, '../../config/examples/contoso');
async function main() {
  const org = await loadOrgFolder(ORG);
  const directory = await loadDirectoryFile(path.join(ORG, 'directory.yaml'));
  const engine = createEngine({ org, directory: () => directory });
  const envelope = { mailFrom: 'tom.okafor@contoso.com', rcptTo: ['buyer@fabrikam.example'] };
  const msg = buildBenchMessages()[Number(process.env.MSG ?? 0)]!;
  const N = Number(process.env.N ?? 5000);
  const one = async () => { const r = engine.process(msg.open(), envelope); await drain(r.output); await r.result; };
  for (let i = 0; i < 1000; i++) await one();
  const s = new Session(); s.connect();
  if (process.env.PROF) { await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 50 }); await s.post('Profiler.start'); }
  const t = process.cpuUsage();
  for (let i = 0; i < N; i++) await one();
  const u = process.cpuUsage(t);
  console.log('ms/msg', ((u.user + u.system) / 1000 / N).toFixed(3));
  if (process.env.PROF) { const { profile } = await s.post('Profiler.stop'); writeFileSync(process.env.PROF, JSON.stringify(profile)); }
}
main();
