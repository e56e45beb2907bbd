//! A TCP proxy for fault drills: put it between the gateway and Postgres, then cut every
//! connection (RST) or blackhole them (keep them open, forward nothing) and heal again. The
//! store's fault tests and the integration tests use it; it is loopback-only by construction.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    Pass,
    /// Stop forwarding silently: open connections hang, new ones are accepted and hang.
    Blackhole,
    /// Reset every open connection (RST) and every new one.
    Cut,
}

/// A running proxy on `127.0.0.1`; stops (dropping every connection) when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, rx) = watch::channel(Fault::Pass);
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rx = rx.clone();
                let task = tokio::spawn(relay(client, upstream, rx));
                held.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(task.abort_handle());
            }
        });
        tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(accept.abort_handle());
        Ok(FaultProxy { addr, fault, tasks })
    }

    /// Switches every connection, open and new, to `fault`.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Closes with RST instead of FIN.
fn reset(s: TcpStream) {
    #[allow(deprecated)] // a zero linger never blocks the thread on drop
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let current = *fault.borrow_and_update();
    match current {
        Fault::Cut => return reset(client),
        Fault::Blackhole => return std::future::pending().await,
        Fault::Pass => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        now = wait_fault(&mut fault) => {
            if now == Fault::Cut {
                reset(client);
                reset(server);
                return;
            }
            // Blackhole: keep both sockets open and never move another byte.
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves with the first fault other than `Pass`.
async fn wait_fault(fault: &mut watch::Receiver<Fault>) -> Fault {
    match fault.wait_for(|f| *f != Fault::Pass).await {
        Ok(f) => *f,
        // The proxy is gone: behave as cut.
        Err(_) => Fault::Cut,
    }
}
