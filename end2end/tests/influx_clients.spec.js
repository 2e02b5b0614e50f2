// The InfluxDB client libraries people already run push to livechart unchanged: the official
// 2.x JavaScript client (`@influxdata/influxdb-client`, /api/v2/write, token auth, gzip above
// 1 000 bytes) and node-influx (`influx`, the 1.x /write with u/p), both from npm. No browser:
// these are the clients' own requests against the release server.
const { test, expect, Server } = require('./fixtures');
const { InfluxDB, Point, HttpError, setLogger } = require('@influxdata/influxdb-client');
const Influx = require('influx');
const fs = require('node:fs');

const TOKEN = 'e2e-ingest-token';

// The client logs every refused write to the console; the tests check the errors themselves.
setLogger({ error() {}, warn() {} });

test.beforeEach(async ({}, testInfo) => {
  test.skip(testInfo.project.name === 'phone', 'no page involved; once is enough');
});

// A server that requires a token, as one on a network address does.
async function withTokenServer(body) {
  const server = new Server(['--ingest-token', TOKEN]);
  await server.start();
  try {
    await body(server);
  } finally {
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  }
}

async function getJson(server, path) {
  const res = await fetch(`${server.url}${path}`);
  return { status: res.status, body: await res.json() };
}

async function rawPoints(server, series, labels) {
  const params = new URLSearchParams({ series, from: '0', to: 'now+1m', raw: 'true' });
  for (const [k, v] of Object.entries(labels)) params.append('label', `${k}=${v}`);
  const { status, body } = await getJson(server, `/api/v1/query?${params}`);
  expect(status, JSON.stringify(body)).toBe(200);
  return body.points;
}

test('the official InfluxDB 2.x client writes unchanged', async () => {
  await withTokenServer(async (server) => {
    const influx = new InfluxDB({ url: server.url, token: TOKEN });
    // One batch of everything: about 90 KB of line protocol, which the client gzips.
    const writeApi = influx.getWriteApi('any-org', 'any-bucket', 'ms', { batchSize: 5000, maxRetries: 0 });
    const t0 = Date.now() - 60_000;
    const n = 1000;
    for (let i = 0; i < n; i++) {
      writeApi.writePoint(
        new Point('room temp,east') // a space and a comma: the client escapes both
          .tag('site', 'a b=c')
          .floatField('value', i / 4)
          .intField('count', -i)
          .uintField('seq', i)
          .booleanField('ok', i % 2 === 0)
          .stringField('note', 'skipped, "quoted"')
          .timestamp(new Date(t0 + i * 10)),
      );
    }
    await writeApi.close();

    const { body } = await getJson(server, '/api/v1/series?prefix=room');
    const names = body.series.map((s) => s.series).sort();
    expect(names).toEqual(['room temp,east', 'room temp,east.count', 'room temp,east.ok', 'room temp,east.seq']);
    for (const s of body.series) {
      expect(s.labels).toEqual({ site: 'a b=c' });
      expect(s.points).toBe(n);
    }
    const labels = { site: 'a b=c' };
    const value = await rawPoints(server, 'room temp,east', labels);
    expect(value.length).toBe(n);
    expect(value[0]).toEqual([t0 * 1e6, 0]);
    expect(value[n - 1]).toEqual([(t0 + (n - 1) * 10) * 1e6, (n - 1) / 4]);
    expect((await rawPoints(server, 'room temp,east.count', labels))[7][1]).toBe(-7);
    expect((await rawPoints(server, 'room temp,east.seq', labels))[n - 1][1]).toBe(n - 1);
    expect((await rawPoints(server, 'room temp,east.ok', labels)).slice(0, 3).map((p) => p[1])).toEqual([1, 0, 1]);
  });
});

test('the 2.x client shows the reason a write was refused', async () => {
  await withTokenServer(async (server) => {
    // A wrong token.
    const wrong = new InfluxDB({ url: server.url, token: 'not-the-token' })
      .getWriteApi('o', 'b', 'ms', { maxRetries: 0 });
    wrong.writeRecord(`probe value=1 ${Date.now()}`);
    const denied = await wrong.close().then(() => null, (e) => e);
    expect(denied).toBeInstanceOf(HttpError);
    expect(denied.statusCode).toBe(401);
    expect(denied.message).toMatch(/token/i);

    // A point older than the retention (30 days by default): refused whole, and said why.
    const writeApi = new InfluxDB({ url: server.url, token: TOKEN })
      .getWriteApi('o', 'b', 's', { maxRetries: 0 });
    const now = Math.floor(Date.now() / 1000);
    writeApi.writeRecords([`old value=1 ${now}`, `old value=2 ${now - 90 * 86400}`]);
    const refused = await writeApi.close().then(() => null, (e) => e);
    expect(refused).toBeInstanceOf(HttpError);
    expect(refused.statusCode).toBe(422);
    expect(refused.message).toMatch(/retention/);
    const { body } = await getJson(server, '/api/v1/series?prefix=old');
    expect(body.series).toEqual([]);
  });
});

test('node-influx (1.x /write with u and p) writes unchanged', async () => {
  await withTokenServer(async (server) => {
    const url = new URL(server.url);
    const influx = new Influx.InfluxDB({
      host: url.hostname,
      port: Number(url.port),
      database: 'telegraf',
      username: 'anyone',
      password: TOKEN,
    });
    await influx.createDatabase('telegraf'); // a no-op livechart answers, as clients expect
    const t0 = Date.now() - 5_000;
    await influx.writePoints(
      [0, 1, 2].map((i) => ({
        measurement: 'cpu',
        tags: { host: 'a', cpu: 'cpu0' },
        fields: { usage_idle: 90 + i, usage_user: 3 },
        timestamp: new Date(t0 + i * 1000),
      })),
      { precision: 'ms' },
    );
    const idle = await rawPoints(server, 'cpu.usage_idle', { host: 'a', cpu: 'cpu0' });
    expect(idle).toEqual([0, 1, 2].map((i) => [(t0 + i * 1000) * 1e6, 90 + i]));

    // And a wrong password is a 401 the client reports.
    const wrong = new Influx.InfluxDB({ host: url.hostname, port: Number(url.port), database: 'telegraf', username: 'x', password: 'nope' });
    const e = await wrong.writePoints([{ measurement: 'cpu', fields: { v: 1 } }]).then(() => null, (err) => err);
    expect(e).not.toBeNull();
    expect(String(e.message)).toMatch(/401|token/i);
  });
});
