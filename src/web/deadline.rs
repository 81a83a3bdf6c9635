//! Per-connection deadlines, so that slow or silent clients cannot hold connections for ever.
//!
//! hyper's own `header_read_timeout` also runs between keep-alive requests, so it cannot tell a
//! slow request from a scraper idling between scrapes: set to 10 s it would close every
//! keep-alive connection of a 15 s scrape interval, and set to minutes it would let a client
//! trickle a request line for minutes. [`Deadline`] keeps the two apart:
//! - a request, from its first byte (or from the connection's start) to the first byte of its
//!   response, gets [`Timeouts::request`];
//! - a connection waiting for its next request, or a response waiting for the client to read it,
//!   gets [`Timeouts::idle`] without progress.
//!
//! When a deadline passes, the next read or write fails with `TimedOut` and hyper closes the
//! connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The two allowances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From a request's first byte (or the connection's start) to its response.
    pub request: Duration,
    /// Between requests on a keep-alive connection, and for a stalled response.
    pub idle: Duration,
}

impl Default for Timeouts {
    /// 10 s for a request; 2 min idle, longer than the common scrape intervals, so Prometheus
    /// keeps its connection (and its TLS session) from one scrape to the next.
    fn default() -> Self {
        Self {
            request: Duration::from_secs(10),
            idle: Duration::from_secs(120),
        }
    }
}

/// A stream with [`Timeouts`] applied.
pub struct Deadline<S> {
    inner: S,
    timeouts: Timeouts,
    /// Between a response and the next request's first byte.
    waiting: bool,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl<S> Deadline<S> {
    /// Starts the clock: the first request must arrive within `timeouts.request`.
    pub fn new(inner: S, timeouts: Timeouts) -> Self {
        let deadline = Instant::now() + timeouts.request;
        Self {
            inner,
            timeouts,
            waiting: false,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.sleep.deadline() != self.deadline {
            self.sleep.as_mut().reset(self.deadline);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                if self.waiting {
                    "connection idle for too long"
                } else {
                    "request not received in time"
                },
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(&mut self, n: usize) {
        if n > 0 {
            self.waiting = true;
            self.deadline = Instant::now() + self.timeouts.idle;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.waiting {
                    this.waiting = false;
                    this.deadline = Instant::now() + this.timeouts.request;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.expired(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.expired(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.wrote(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.expired(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.expired(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => this.expired(cx),
            ready => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const T: Timeouts = Timeouts {
        request: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    async fn read_fails_after<S: AsyncRead + Unpin>(d: &mut Deadline<S>) -> Duration {
        let start = Instant::now();
        let mut buf = [0; 64];
        loop {
            match d.read(&mut buf).await {
                Ok(0) => panic!("unexpected end of stream"),
                Ok(_) => continue,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                    return start.elapsed();
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_gets_the_request_timeout() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut d = Deadline::new(server, T);
        assert_eq!(read_fails_after(&mut d).await, T.request);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_request_does_not_buy_more_time() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut d = Deadline::new(server, T);
        let trickle = tokio::spawn(async move {
            for b in b"GET /metrics HTTP/1.1\r\n" {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if client.write_all(&[*b]).await.is_err() {
                    break;
                }
            }
        });
        assert_eq!(read_fails_after(&mut d).await, T.request);
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_response_the_connection_may_idle_but_the_next_request_is_timed() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut d = Deadline::new(server, T);
        d.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        // Idle past the request timeout, within the idle one.
        tokio::time::advance(T.request * 3).await;
        client.write_all(b"GET /me").await.unwrap();
        let mut buf = [0; 64];
        assert_eq!(d.read(&mut buf).await.unwrap(), 7);
        // The partial request then gets the request timeout, not the idle one.
        assert_eq!(read_fails_after(&mut d).await, T.request);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut d = Deadline::new(server, T);
        d.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert_eq!(read_fails_after(&mut d).await, T.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_the_response_is_dropped() {
        let (_client, server) = tokio::io::duplex(16);
        let mut d = Deadline::new(server, T);
        let start = Instant::now();
        let e = d.write_all(&[0; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), T.idle);
    }
}
