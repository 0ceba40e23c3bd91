//! A fault-injecting TCP proxy for one directed Raft link.
//!
//! The runner starts one proxy per ordered pair of nodes (i → j) and starts
//! node i with `--peer-routes j=<proxy>`, so every connection node i opens to
//! node j (AppendEntries, Vote, InstallSnapshot, Forward, and their replies)
//! passes through it, and no other traffic does. Cutting only i → j is
//! therefore a one-way partition: i cannot reach j while j still reaches i.
//!
//! Modes:
//! - `Pass`: bytes flow, each chunk after `delay` (a slow link keeps its
//!   throughput: chunks queue with their due time rather than one by one);
//! - `Drop`: a blackhole. Nothing is forwarded, new connections are accepted
//!   but not connected upstream, and what was sent waits in the socket
//!   buffers, as packets would wait in TCP retransmission; after healing it
//!   arrives late, unless a side gave up on the connection meanwhile;
//! - `Reset`: every connection is reset (RST) and new ones are reset at once,
//!   like a peer that refuses connections.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinkMode {
    #[default]
    Pass,
    Drop,
    Reset,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    pub mode: LinkMode,
    pub delay: Duration,
}

/// One running proxy; dropping it closes the listener and every connection.
pub struct Proxy {
    addr: SocketAddr,
    state: watch::Sender<LinkState>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: String) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(LinkState::default());
        let task = tokio::spawn(accept(listener, upstream, rx));
        Ok(Proxy { addr, state, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, state: LinkState) {
        self.state.send_replace(state);
    }

    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: String, rx: watch::Receiver<LinkState>) {
    // Owned here, so aborting this task also ends every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((socket, _)) = accepted {
                    connections.spawn(connection(socket, upstream.clone(), rx.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Waits while the link is blackholed; false once it resets connections.
async fn passable(rx: &mut watch::Receiver<LinkState>) -> bool {
    loop {
        match rx.borrow_and_update().mode {
            LinkMode::Pass => return true,
            LinkMode::Reset => return false,
            LinkMode::Drop => {}
        }
        if rx.changed().await.is_err() {
            return false;
        }
    }
}

async fn until_reset(mut rx: watch::Receiver<LinkState>) {
    loop {
        if rx.borrow_and_update().mode == LinkMode::Reset || rx.changed().await.is_err() {
            return;
        }
    }
}

fn reset(socket: &TcpStream) {
    // Linger 0: close sends RST instead of FIN.
    let _ = socket.set_zero_linger();
}

async fn connection(mut client: TcpStream, upstream: String, rx: watch::Receiver<LinkState>) {
    if !passable(&mut rx.clone()).await {
        reset(&client);
        return;
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let was_reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        tokio::select! {
            _ = async {
                tokio::join!(
                    pump(client_read, server_write, rx.clone()),
                    pump(server_read, client_write, rx.clone()),
                )
            } => false,
            _ = until_reset(rx.clone()) => true,
        }
    };
    if was_reset {
        reset(&client);
        reset(&server);
    }
}

/// Chunks in flight on one direction of a connection, with their due times.
const QUEUE_CHUNKS: usize = 256;

async fn pump<R, W>(mut from: R, mut to: W, rx: watch::Receiver<LinkState>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut queue) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let delays = rx.clone();
    let read_side = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + delays.borrow().delay;
                    let chunk = buf.get(..n).unwrap_or_default().to_vec();
                    if tx.send((due, chunk)).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let write_side = async move {
        let mut rx = rx;
        while let Some((due, chunk)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            if !passable(&mut rx).await || to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read_side, write_side);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(text).await?;
        let mut buf = vec![0u8; text.len()];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn passes_delays_holds_and_resets() {
        let upstream = echo_server().await;
        let proxy = Proxy::start(upstream.to_string()).await.unwrap();
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"hello").await.unwrap(), b"hello");

        proxy.set(LinkState {
            mode: LinkMode::Pass,
            delay: Duration::from_millis(100),
        });
        let start = Instant::now();
        round_trip(&mut stream, b"slow").await.unwrap();
        // Both directions pass the proxy, each adds the delay.
        assert!(start.elapsed() >= Duration::from_millis(200));

        proxy.set(LinkState {
            mode: LinkMode::Drop,
            delay: Duration::ZERO,
        });
        stream.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut buf));
        assert!(early.await.is_err(), "a blackholed link delivered");
        proxy.set(LinkState::default());
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"held");

        proxy.set(LinkState {
            mode: LinkMode::Reset,
            delay: Duration::ZERO,
        });
        let mut dead = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut dead)).await;
        assert!(
            matches!(read, Ok(Err(_)) | Ok(Ok(0))),
            "a reset link kept the connection: {read:?}"
        );
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut fresh, b"x").await.is_err());
    }
}
