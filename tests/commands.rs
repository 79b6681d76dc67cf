//! The command workloads (issue 21): every exhibit, through the shared session, answers
//! Redis's protocol (`--workload resp`) and memcached's (`--workload memcache`) as the load
//! generator expects, pipelined and cut into pieces; and `bench run` drives them with every
//! answer checked.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{expect, shared_machine, start_server, variants};
use iomodels::load::command::fixed;
use iomodels::protocol::{Cost, Protocol, Workload};

const TIMEOUT: Duration = Duration::from_secs(10);

fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut back = vec![0u8; len];
    stream.read_exact(&mut back).expect("read the whole answer");
    back
}

#[test]
fn every_model_answers_resp_and_memcache_pipelined_and_cut() {
    let _shared = shared_machine();
    for v in variants() {
        for workload in [Workload::Resp, Workload::Memcache] {
            for size in [0, 64, 100_000] {
                let protocol = Protocol {
                    workload,
                    message_size: Some(size),
                    cost: Cost::default(),
                };
                let (addr, server) = start_server(&v, protocol);
                let f = fixed(workload, size).unwrap();
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(TIMEOUT)).unwrap();
                let what = format!("{} {workload} value {size}", v.name);
                // The preset, then one request a byte at a time, then 50 pipelined at once.
                s.write_all(&f.preset.0).unwrap();
                assert_eq!(read_exactly(&mut s, f.preset.1.len()), f.preset.1, "{what}");
                for b in &f.request {
                    s.write_all(std::slice::from_ref(b)).unwrap();
                }
                assert_eq!(read_exactly(&mut s, f.reply.len()), f.reply, "{what}");
                let mut writer = s.try_clone().unwrap();
                let many = f.request.repeat(50);
                let sender = std::thread::spawn(move || writer.write_all(&many));
                let back = read_exactly(&mut s, f.reply.len() * 50);
                sender.join().unwrap().unwrap();
                assert!(
                    back == f.reply.repeat(50),
                    "{what}: pipelined answers differ"
                );
                drop(s);
                server
                    .stop()
                    .unwrap_or_else(|e| panic!("{what}: stop: {e}"));
            }
        }
    }
}

#[test]
fn bench_run_drives_resp_and_memcache_with_every_answer_checked() {
    let _shared = shared_machine();
    let dir = tempfile::tempdir().unwrap();
    for (workload, pipeline) in [("resp", "1"), ("memcache", "8")] {
        let out = dir.path().join(format!("{workload}.json"));
        let o = common::bench()
            .args(["run", "--model", "reactor", "--model", "blocking"])
            .args([
                "--workload",
                workload,
                "-p",
                pipeline,
                "-c",
                "4",
                "-d",
                "1s",
            ])
            .args([
                "--warmup",
                "0.3s",
                "--accounting",
                "off",
                "--no-report",
                "--quiet",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        expect(&o, 0, &[]);
        let r = common::valid_result(&out);
        assert_eq!(r["scenario"]["workload"], workload);
        for run in r["runs"].as_array().unwrap() {
            assert_eq!(run["errors"], 0, "{run}");
            assert!(run["requests"].as_u64().unwrap() > 100, "{run}");
        }
    }
}

/// A server that answers another protocol is caught: the preset is refused with what it
/// answered, exit 1.
#[test]
fn a_server_of_another_protocol_is_caught_at_the_preset() {
    let _shared = shared_machine();
    let v = &variants()[0];
    let protocol = Protocol {
        workload: Workload::Echo,
        message_size: None,
        cost: Cost::default(),
    };
    let (addr, server) = start_server(v, protocol);
    let o = common::bench()
        .args(["load", "--target", &addr.to_string(), "--workload", "resp"])
        .args(["-c", "2", "-d", "0.5s", "--quiet"])
        .output()
        .unwrap();
    expect(&o, 1, &["did not store the preset key `iomodels`"]);
    server.stop().unwrap();
}
