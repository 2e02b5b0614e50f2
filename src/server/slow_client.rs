//! A deadline for a new connection's first request headers, against clients that open
//! connections and trickle bytes to hold them (slowloris): `axum::serve` gives hyper no
//! timer, so hyper's own header timeout is off.
//!
//! The listener wraps each accepted socket; until the first blank line (`\r\n\r\n`, the end
//! of the request head) has been read, reading fails once [`HEADER_DEADLINE`] has passed
//! since the accept, and hyper drops the connection. After the head, nothing more is
//! watched: request bodies have `--request-timeout-secs` (ingest) and live connections
//! their heartbeats.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a new connection has to send its first request head. Browsers and programs
/// send it at once; 10 s also covers a phone on a bad network.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// The listener `run` serves from: TCP, with `TCP_NODELAY` and the header deadline.
pub struct Listener {
    pub inner: TcpListener,
    pub deadline: Duration,
}

impl axum::serve::Listener for Listener {
    type Io = HeadDeadline;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        // No Nagle: a live frame is small and must not wait for the ACK of the one before it
        // (with the peer's delayed ACKs, up to 40 ms a frame).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY not set: {e}");
        }
        (HeadDeadline::new(tcp, self.deadline), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

pub struct HeadDeadline {
    tcp: TcpStream,
    /// Until the first head is complete: the deadline, and the last three bytes read (a
    /// `\r\n\r\n` may straddle two reads).
    watch: Option<(Pin<Box<tokio::time::Sleep>>, [u8; 3])>,
}

impl HeadDeadline {
    fn new(tcp: TcpStream, deadline: Duration) -> Self {
        Self {
            tcp,
            watch: Some((Box::pin(tokio::time::sleep(deadline)), [0; 3])),
        }
    }
}

/// Whether `tail` (the three bytes before) followed by `bytes` holds `\r\n\r\n`; updates
/// `tail` to the last three bytes.
fn head_ends(tail: &mut [u8; 3], bytes: &[u8]) -> bool {
    let mut window: Vec<u8> = Vec::with_capacity(3 + bytes.len());
    window.extend_from_slice(tail);
    window.extend_from_slice(bytes);
    let found = window.windows(4).any(|w| w == b"\r\n\r\n");
    let n = window.len();
    tail.copy_from_slice(&window[n - 3..]);
    found
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Some((sleep, tail)) = &mut this.watch {
            if let Poll::Ready(Ok(())) = &res {
                if head_ends(tail, &buf.filled()[before..]) {
                    this.watch = None;
                    return res;
                }
            }
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no complete request head within the deadline",
                )));
            }
        }
        res
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let mut tail = [0; 3];
        assert!(!head_ends(&mut tail, b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(head_ends(&mut tail, b"\r\n"));
        let mut tail = [0; 3];
        assert!(!head_ends(&mut tail, b"\r"));
        assert!(!head_ends(&mut tail, b"\n"));
        assert!(!head_ends(&mut tail, b"\r"));
        assert!(head_ends(&mut tail, b"\n"));
        let mut tail = [0; 3];
        assert!(!head_ends(&mut tail, b""));
    }
}
