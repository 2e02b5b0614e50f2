// The fan-out baseline: a socket.io server that broadcasts every POST /publish body to every
// connected client as a 'points' event, the way the original Flask + Socket.IO demo did.
// Usage: node server.js [port]; prints "listening <port>" once ready.
const http = require('node:http');
const { Server } = require('socket.io');

const srv = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      try {
        io.emit('points', JSON.parse(body));
        res.writeHead(204);
      } catch (e) {
        res.writeHead(400);
      }
      res.end();
    });
  } else if (req.url === '/healthz') {
    res.writeHead(200);
    res.end('ok');
  } else {
    res.writeHead(404);
    res.end();
  }
});
const io = new Server(srv, { transports: ['websocket'], perMessageDeflate: false });
srv.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`listening ${srv.address().port}`);
});
