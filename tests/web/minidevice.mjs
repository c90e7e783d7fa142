// A minimal LwM2M client for the browser tests: registers to lwdm's plain
// CoAP management port and answers Read (SenML JSON), Write and Execute on a
// small Device object, so the device page has something live to show.
// (lwdm-sim covers bootstrap; this covers the registration interface.)
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

const CON = 0, ACK = 2;
const OPT = { LOCATION_PATH: 8, URI_PATH: 11, CONTENT_FORMAT: 12, URI_QUERY: 15, ACCEPT: 17 };

function ext(n) {
  if (n < 13) return [n, Buffer.alloc(0)];
  if (n < 269) return [13, Buffer.from([n - 13])];
  const b = Buffer.alloc(2); b.writeUInt16BE(n - 269); return [14, b];
}

function encode({ type, code, mid, token = Buffer.alloc(0), options = [], payload }) {
  const parts = [Buffer.from([0x40 | (type << 4) | token.length, code, mid >> 8, mid & 0xff]), token];
  let last = 0;
  for (const [num, val0] of [...options].sort((a, b) => a[0] - b[0])) {
    const val = Buffer.isBuffer(val0) ? val0 : Buffer.from(String(val0));
    const [dn, dx] = ext(num - last);
    const [ln, lx] = ext(val.length);
    parts.push(Buffer.from([(dn << 4) | ln]), dx, lx, val);
    last = num;
  }
  if (payload && payload.length) parts.push(Buffer.from([0xff]), Buffer.from(payload));
  return Buffer.concat(parts);
}

function decode(b) {
  const tkl = b[0] & 15;
  const m = { type: (b[0] >> 4) & 3, code: b[1], mid: b.readUInt16BE(2), token: b.subarray(4, 4 + tkl), options: [], payload: Buffer.alloc(0) };
  let i = 4 + tkl;
  let num = 0;
  while (i < b.length) {
    if (b[i] === 0xff) { m.payload = b.subarray(i + 1); break; }
    let d = b[i] >> 4;
    let l = b[i] & 15;
    i++;
    if (d === 13) { d = b[i] + 13; i++; } else if (d === 14) { d = b.readUInt16BE(i) + 269; i += 2; }
    if (l === 13) { l = b[i] + 13; i++; } else if (l === 14) { l = b.readUInt16BE(i) + 269; i += 2; }
    num += d;
    m.options.push([num, b.subarray(i, i + l)]);
    i += l;
  }
  return m;
}

const uint = (v) => (v === 0 ? Buffer.alloc(0) : Buffer.from([v]));

export class MiniDevice {
  constructor(endpoint) {
    this.endpoint = endpoint;
    this.values = { 0: 'lwdm test maker', 1: 'web-model', 2: 'SN-0001', 3: '1.0.0', 9: 87, 13: 1763800000, 14: '+01' };
    this.executed = [];
    this.sock = createSocket('udp4');
    this.mid = Math.floor(Math.random() * 60000);
  }

  async register(port, lifetime = 300) {
    await new Promise((r) => this.sock.bind(0, '127.0.0.1', r));
    this.sock.on('message', (b, rinfo) => this.onMessage(b, rinfo));
    this.server = { port, address: '127.0.0.1' };
    const token = randomBytes(4);
    const mid = this.mid++;
    const msg = encode({
      type: CON, code: 0x02, mid, token,
      options: [[OPT.URI_PATH, 'rd'], [OPT.CONTENT_FORMAT, uint(40)],
        [OPT.URI_QUERY, `ep=${this.endpoint}`], [OPT.URI_QUERY, `lt=${lifetime}`], [OPT.URI_QUERY, 'lwm2m=1.1'], [OPT.URI_QUERY, 'b=U']],
      payload: '</>;ct=110,</1/0>,</3/0>',
    });
    const answer = new Promise((resolve) => { this.pending = { token, resolve }; });
    for (let i = 0; i < 4; i++) {
      this.sock.send(msg, port, '127.0.0.1');
      const r = await Promise.race([answer, new Promise((res) => setTimeout(() => res(null), 1500))]);
      if (r) {
        if (r.code !== 0x41) throw new Error(`Register answered ${r.code >> 5}.${String(r.code & 31).padStart(2, '0')}`);
        this.location = r.options.filter(([n]) => n === OPT.LOCATION_PATH).map(([, v]) => v.toString()).join('/');
        return this.location;
      }
    }
    throw new Error('no answer to Register');
  }

  onMessage(b, rinfo) {
    let m;
    try { m = decode(b); } catch { return; }
    if (this.pending && m.token.equals(this.pending.token) && (m.type === ACK || m.code >= 0x40)) {
      this.pending.resolve(m);
      this.pending = null;
      return;
    }
    if (m.code === 0 || m.code >= 0x20) return; // empty or a response
    const path = m.options.filter(([n]) => n === OPT.URI_PATH).map(([, v]) => v.toString());
    const reply = (code, payload, cf) => this.sock.send(encode({
      type: m.type === CON ? ACK : 1, code, mid: m.type === CON ? m.mid : this.mid++, token: m.token,
      options: cf !== undefined ? [[OPT.CONTENT_FORMAT, uint(cf)]] : [], payload,
    }), rinfo.port, rinfo.address);
    const [o, i, r] = path.map(Number);
    if (o !== 3 || (i !== undefined && i !== 0)) return reply(0x84); // 4.04
    if (m.code === 1) { // GET
      const recs = Object.entries(this.values).filter(([k]) => r === undefined || Number(k) === r)
        .map(([k, v], idx) => ({ ...(idx === 0 ? { bn: '/3/0/' } : {}), n: k, ...(typeof v === 'number' ? { v } : { vs: v }) }));
      if (!recs.length) return reply(0x84);
      return reply(0x45, JSON.stringify(recs), 110); // 2.05 SenML JSON
    }
    if (m.code === 3 || m.code === 2) { // PUT write / POST execute or partial write
      if (m.code === 2 && r !== undefined) { this.executed.push(r); return reply(0x44); } // 2.04
      try {
        const recs = JSON.parse(m.payload.toString() || '[]');
        let bn = '';
        for (const rec of recs) {
          if (rec.bn) bn = rec.bn;
          const full = `${bn}${rec.n || ''}`;
          const res = Number(full.split('/').filter(Boolean)[2]);
          this.values[res] = rec.vs ?? rec.v ?? rec.vb;
        }
      } catch { /* a format we do not parse: accept anyway */ }
      return reply(0x44);
    }
    return reply(0x85); // 4.05
  }

  close() { try { this.sock.close(); } catch { /* closed */ } }
}
