// GlusterFS's Davies-Meyer name hash (libglusterfs hashfn.c, gf_dm_hashfn), so distribute places a
// name exactly as GlusterFS computes it. Words are read little-endian; trailing bytes are OR-ed in
// as C's signed char, sign extension included.
const DM_DELTA = 0x9e3779b9;
const DM_FULLROUNDS = 10;
const DM_PARTROUNDS = 6;

function dmRound(rounds: number, a: Uint32Array, h: Uint32Array): void {
  let sum = 0;
  let b0 = h[0];
  let b1 = h[1];
  for (let n = 0; n < rounds; n++) {
    sum = (sum + DM_DELTA) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a[0]) ^ (b1 + sum) ^ ((b1 >>> 5) + a[1])) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + a[2]) ^ (b0 + sum) ^ ((b0 >>> 5) + a[3])) >>> 0)) >>> 0;
  }
  h[0] = (h[0] + b0) >>> 0;
  h[1] = (h[1] + b1) >>> 0;
}

export function dmHash(name: string | Buffer): number {
  const msg = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const len = msg.length;
  const h = new Uint32Array([0x9464a485, 0x542e1a94]);
  const a = new Uint32Array(4);
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let pos = 0;
  let fullWords = Math.floor(len / 4);
  let fullBytes = len;
  const fullQuads = Math.floor(len / 16);
  for (let i = 0; i < fullQuads; i++) {
    for (let j = 0; j < 4; j++) {
      a[j] = msg.readUInt32LE(pos);
      pos += 4;
      fullWords--;
      fullBytes -= 4;
    }
    dmRound(DM_PARTROUNDS, a, h);
  }
  for (let j = 0; j < 4; j++) {
    if (fullWords) {
      a[j] = msg.readUInt32LE(pos);
      pos += 4;
      fullWords--;
      fullBytes -= 4;
    } else {
      let v = pad;
      while (fullBytes) {
        v = ((v << 8) | msg.readInt8(len - fullBytes)) >>> 0;
        fullBytes--;
      }
      a[j] = v;
    }
  }
  dmRound(DM_FULLROUNDS, a, h);
  return (h[0] ^ h[1]) >>> 0;
}
