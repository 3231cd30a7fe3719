// What gfs-provisioner-cli prints, in heketi-cli's words and layout.
const gib = (kib: number) => Math.round(kib / (1024 * 1024));

export function formatVolume(v: any): string {
  const replica = v.durability?.type === 'replicate' ? v.durability.replicate?.replica ?? 3 : 1;
  const opts = v.mount?.glusterfs?.options?.['backup-volfile-servers'];
  const sets = v.bricks?.length ? v.bricks.length / replica : 0;
  return [
    `Name: ${v.name}`,
    `Size: ${v.size}`,
    `Volume Id: ${v.id}`,
    `Cluster Id: ${v.cluster}`,
    `Mount: ${v.mount?.glusterfs?.device ?? ''}`,
    `Mount Options: backup-volfile-servers=${opts ?? ''}`,
    'Block: false',
    'Free Size: 0',
    'Reserved Size: 0',
    'Block Hosting Restriction: (none)',
    'Block Volumes: []',
    `Durability Type: ${v.durability?.type ?? 'none'}`,
    `Distributed+Replica: ${replica}`,
    `Distribute Count: ${sets}`,
    `Snapshot Factor: ${Number(v.snapshot?.factor ?? 1).toFixed(2)}`,
    '',
  ].join('\n');
}

export function formatTopology(t: any): string {
  const out: string[] = [];
  for (const c of t.clusters ?? []) {
    out.push('', `Cluster Id: ${c.id}`, '', `    File:  ${c.file}`, `    Block: ${c.block}`, '', '    Volumes:', '');
    for (const v of c.volumes ?? []) {
      const replica = v.durability?.type === 'replicate' ? v.durability.replicate?.replica : 1;
      out.push(`\tName: ${v.name}`, `\tSize: ${v.size}`, `\tId: ${v.id}`, `\tCluster Id: ${v.cluster}`,
        `\tMount: ${v.mount?.glusterfs?.device}`, `\tMount Options: backup-volfile-servers=${v.mount?.glusterfs?.options?.['backup-volfile-servers'] ?? ''}`,
        `\tDurability Type: ${v.durability?.type}`, `\tReplica: ${replica}`, `\tSnapshot: ${v.snapshot?.enable ? 'Enabled' : 'Disabled'}`, '', '\t\tBricks:');
      for (const b of v.bricks ?? []) {
        out.push(`\t\t\tId: ${b.id}`, `\t\t\tPath: ${b.path}`, `\t\t\tSize (GiB): ${gib(b.size)}`, `\t\t\tNode: ${b.node}`, `\t\t\tDevice: ${b.device}`, '');
      }
      out.push('');
    }
    out.push('    Nodes:', '');
    for (const n of c.nodes ?? []) {
      out.push(`\tNode Id: ${n.id}`, `\tState: ${n.state}`, `\tCluster Id: ${n.cluster}`, `\tZone: ${n.zone}`,
        `\tManagement Hostnames: ${n.hostnames.manage.join(', ')}`, `\tStorage Hostnames: ${n.hostnames.storage.join(', ')}`, '\tDevices:');
      for (const d of n.devices ?? []) {
        out.push(`\t\tId:${d.id}   Name:${d.name}\tState:${d.state}\tSize (GiB):${gib(d.storage.total)}\tUsed (GiB):${gib(d.storage.used)}\tFree (GiB):${gib(d.storage.free)}`, '\t\t\tBricks:');
        for (const b of d.bricks ?? []) out.push(`\t\t\t\tId:${b.id}   Size (GiB):${gib(b.size)}\tPath: ${b.path}`);
      }
      out.push('');
    }
  }
  return `${out.join('\n')}\n`;
}
