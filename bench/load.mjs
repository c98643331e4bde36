// One load run with autocannon (keep-alive connections, one request in flight
// on each), the same generator for every server in bench/oidc_tokens.py.
//
// Usage: node load.mjs '<json: url, method, headers, body, bodies, connections, duration>'
// With `bodies`, connection i sends bodies[i % bodies.length] (one user per
// connection, say). Prints autocannon's result as one line of JSON.

import autocannon from "autocannon";

const spec = JSON.parse(process.argv[2]);

let next = 0;
const bodies = spec.bodies || [];

const result = await autocannon({
  url: spec.url,
  method: spec.method,
  headers: spec.headers,
  body: spec.body,
  connections: spec.connections,
  duration: spec.duration,
  pipelining: 1,
  timeout: 60,
  setupClient: bodies.length
    ? (client) => client.setBody(bodies[next++ % bodies.length])
    : undefined,
});
process.stdout.write(JSON.stringify(result) + "\n");
