//! Request heads must arrive within a deadline: a connection that withholds
//! or trickles its request line and headers (slowloris) is closed.
//!
//! Why here: `axum::serve` gives hyper no timer, so hyper's own
//! `header_read_timeout` never fires, and the `timeout` middleware starts
//! only once a head has been parsed. Without this a client could hold a
//! connection, and a file descriptor, for ever by sending a byte now and then.
//!
//! How: from accept, and again after every response byte written, the
//! connection waits for a head; reads are watched for the blank line that
//! ends it (`\r\n\r\n`). If it has not come when the deadline passes, the next
//! read fails with `TimedOut` and hyper closes the connection. Bodies are
//! bounded by the `timeout` middleware, not here. An idle keep-alive
//! connection is closed after the same time.
//!
//! Never: inspects or alters the bytes beyond looking for the blank line.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The blank line that ends an HTTP/1 request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// A TCP listener whose connections get `head_timeout` for each request head.
pub struct HeadTimeoutListener {
    inner: TcpListener,
    head_timeout: Duration,
}

impl HeadTimeoutListener {
    pub fn new(inner: TcpListener, head_timeout: Duration) -> HeadTimeoutListener {
        HeadTimeoutListener { inner, head_timeout }
    }
}

impl axum::serve::Listener for HeadTimeoutListener {
    type Io = HeadTimeoutStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (HeadTimeoutStream::new(stream, self.head_timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that must deliver each request head before its deadline.
pub struct HeadTimeoutStream {
    inner: TcpStream,
    head_timeout: Duration,
    /// Set while a head is awaited: it must be complete when this fires.
    deadline: Option<Pin<Box<Sleep>>>,
    /// How many bytes of `HEAD_END` the latest bytes read matched.
    matched: usize,
}

impl HeadTimeoutStream {
    fn new(inner: TcpStream, head_timeout: Duration) -> HeadTimeoutStream {
        let deadline = Some(Box::pin(tokio::time::sleep(head_timeout)));
        HeadTimeoutStream { inner, head_timeout, deadline, matched: 0 }
    }

    /// A response is going out: the next request head is awaited from now.
    fn await_next_head(&mut self) {
        let when = Instant::now() + self.head_timeout;
        match self.deadline.as_mut() {
            Some(deadline) => deadline.as_mut().reset(when),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(when))),
        }
        self.matched = 0;
    }

    /// Looks for the end of the head in bytes just read.
    fn watch(&mut self, bytes: &[u8]) {
        if self.deadline.is_none() {
            return;
        }
        for &byte in bytes {
            self.matched = match byte {
                _ if byte == HEAD_END[self.matched] => self.matched + 1,
                b'\r' => 1,
                _ => 0,
            };
            if self.matched == HEAD_END.len() {
                self.deadline = None;
                self.matched = 0;
                return;
            }
        }
    }

    fn timed_out() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "the request head did not arrive in time")
    }
}

impl AsyncRead for HeadTimeoutStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.deadline.as_ref().is_some_and(|deadline| deadline.is_elapsed()) {
            return Poll::Ready(Err(Self::timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.watch(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.deadline.as_mut().map(|deadline| deadline.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Err(Self::timed_out())),
                _ => Poll::Pending,
            },
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for HeadTimeoutStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.await_next_head();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.await_next_head();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The peer address of a connection accepted through [`HeadTimeoutListener`]
/// (axum's `ConnectInfo`), used by `/audit` to tell loopback requests apart.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, HeadTimeoutListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'a, HeadTimeoutListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
