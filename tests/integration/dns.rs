//! A DNS server for the NGINX tests: answers `A` queries from a table the test can change
//! while NGINX runs (a container restarted at a new address), on a loopback UDP port.
//! Only what NGINX's resolver asks: one question, class IN, types A and AAAA.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TYPE_A: u16 = 1;

/// Names (lowercase, without the trailing dot) and their addresses; `any` answers every
/// other name.
#[derive(Clone, Default)]
struct Records {
    names: HashMap<String, Ipv4Addr>,
    any: Option<Ipv4Addr>,
}

impl Records {
    fn get(&self, name: &str) -> Option<&Ipv4Addr> {
        self.names.get(name).or(self.any.as_ref())
    }
}

pub struct FakeDns {
    pub addr: SocketAddr,
    records: Arc<Mutex<Records>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeDns {
    /// Answers every name with `ip`.
    pub fn any(ip: Ipv4Addr) -> FakeDns {
        FakeDns::serve(Records {
            names: HashMap::new(),
            any: Some(ip),
        })
    }

    /// Serves `records` (names without the trailing dot, matched ignoring case).
    pub fn start(records: &[(&str, Ipv4Addr)]) -> FakeDns {
        FakeDns::serve(Records {
            names: records
                .iter()
                .map(|(n, ip)| (n.to_ascii_lowercase(), *ip))
                .collect(),
            any: None,
        })
    }

    fn serve(table: Records) -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("local addr");
        let dns = FakeDns {
            addr,
            records: Arc::new(Mutex::new(table)),
            queries: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (records, queries, stop) = (dns.records.clone(), dns.queries.clone(), dns.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                queries.fetch_add(1, Ordering::Relaxed);
                let table = records.lock().expect("records").clone();
                if let Some(reply) = answer(&buf[..n], &table) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        dns
    }

    /// Points `name` at `ip` from now on.
    pub fn set(&self, name: &str, ip: Ipv4Addr) {
        self.records
            .lock()
            .expect("records")
            .names
            .insert(name.to_ascii_lowercase(), ip);
    }

    /// Queries received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The reply to one query: the address for an `A` question about a known name, an empty
/// answer for other types of a known name, NXDOMAIN for an unknown one.
fn answer(query: &[u8], table: &Records) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    let name = labels.join(".");
    let ip = table.get(&name);
    let answers = u16::from(ip.is_some() && qtype == TYPE_A);
    let rcode = if ip.is_some() { 0 } else { 3 };
    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&query[..2]);
    // QR, the query's opcode and RD, AA; RA; the rcode.
    reply.push(0x80 | (query[2] & 0x79) | 0x04);
    reply.push(0x80 | rcode);
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    if let (Some(ip), 1) = (ip, answers) {
        reply.extend_from_slice(&[0xc0, 0x0c]); // the name: a pointer to the question's
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&[0, 1]); // class IN
        reply.extend_from_slice(&60u32.to_be_bytes()); // TTL
        reply.extend_from_slice(&[0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}
