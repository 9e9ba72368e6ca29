//! CloudWatch for the SDK against moto: a loopback HTTP server (hyper) that
//! takes the SDK's Smithy RPC v2 CBOR requests and asks moto the same
//! operation in the JSON 1.0 protocol, which moto serves (it has no CBOR:
//! getmoto/moto#9195), then answers in CBOR.
//!
//! Requests: CBOR → JSON as is (timestamps, CBOR tag 1, become the epoch
//! seconds JSON 1.0 uses; blobs become base64). Answers: JSON → CBOR typed by
//! the operation's output shape in botocore's model of the service (the one
//! moto itself serves from, in the project's .venv): timestamps as tag 1,
//! doubles as 64-bit floats, integers as integers. Errors keep their status
//! and become `{"__type", "message"}`, as RPC v2 CBOR has them; an answer
//! that is not JSON (moto's 500 page for an operation it lacks) becomes an
//! `InternalFailure` that quotes it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

const PREFIX: &str = "/service/GraniteServiceVersion20100801/operation/";
const TARGET: &str = "GraniteServiceVersion20100801";

type Body = Full<Bytes>;

/// botocore's model of CloudWatch: the shapes, and each operation's output.
struct Model {
    shapes: HashMap<String, Value>,
    outputs: HashMap<String, String>,
}

impl Model {
    fn load() -> Result<Self> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
        let path = std::fs::read_dir(&root)
            .with_context(|| format!("{} (run `make tools`)", root.display()))?
            .filter_map(|e| e.ok())
            .map(|e| {
                e.path()
                    .join("site-packages/botocore/data/cloudwatch/2010-08-01/service-2.json.gz")
            })
            .find(|p| p.exists())
            .context("botocore's CloudWatch model in .venv (run `make tools`)")?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut text)?;
        let model: Value = serde_json::from_str(&text)?;
        let shapes: HashMap<String, Value> = model["shapes"]
            .as_object()
            .context("shapes")?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let outputs = model["operations"]
            .as_object()
            .context("operations")?
            .iter()
            .filter_map(|(name, op)| {
                Some((name.clone(), op["output"]["shape"].as_str()?.to_owned()))
            })
            .collect();
        Ok(Self { shapes, outputs })
    }

    /// `json` as CBOR, typed by `shape`.
    fn encode(&self, shape: Option<&str>, json: &Value, out: &mut Vec<u8>) {
        let s = shape.and_then(|n| self.shapes.get(n));
        let kind = s.and_then(|s| s["type"].as_str()).unwrap_or("");
        match json {
            Value::Null => out.push(0xf6),
            Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Value::Number(n) => match kind {
                "timestamp" => {
                    head(out, 6, 1);
                    float(out, n.as_f64().unwrap_or_default());
                }
                "double" | "float" => float(out, n.as_f64().unwrap_or_default()),
                _ => match n.as_i64() {
                    Some(i) => int(out, i),
                    None => float(out, n.as_f64().unwrap_or_default()),
                },
            },
            Value::String(t) => match kind {
                "timestamp" => {
                    // ISO 8601, as some moto answers have it.
                    let secs = chrono::DateTime::parse_from_rfc3339(t)
                        .map(|d| d.timestamp_millis() as f64 / 1000.0)
                        .unwrap_or_default();
                    head(out, 6, 1);
                    float(out, secs);
                }
                "blob" => {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(t)
                        .unwrap_or_default();
                    head(out, 2, b.len() as u64);
                    out.extend_from_slice(&b);
                }
                _ => {
                    head(out, 3, t.len() as u64);
                    out.extend_from_slice(t.as_bytes());
                }
            },
            Value::Array(items) => {
                let member = s.and_then(|s| s["member"]["shape"].as_str());
                head(out, 4, items.len() as u64);
                for i in items {
                    self.encode(member, i, out);
                }
            }
            Value::Object(map) => {
                head(out, 5, map.len() as u64);
                for (k, v) in map {
                    head(out, 3, k.len() as u64);
                    out.extend_from_slice(k.as_bytes());
                    let member = match kind {
                        "map" => s.and_then(|s| s["value"]["shape"].as_str()),
                        _ => s.and_then(|s| s["members"][k.as_str()]["shape"].as_str()),
                    };
                    self.encode(member, v, out);
                }
            }
        }
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        head(out, 0, i as u64);
    } else {
        head(out, 1, (-1 - i) as u64);
    }
}

/// Always 64 bits: the SDK reads a double only from a float, and this
/// keeps the value exactly as moto gave it.
fn float(out: &mut Vec<u8>, f: f64) {
    out.push(0xfb);
    out.extend_from_slice(&f.to_be_bytes());
}

/// A request's CBOR as the JSON 1.0 body moto reads.
fn to_json(v: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(i as f64))
        }
        C::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        C::Text(t) => Value::String(t),
        C::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        C::Bool(b) => Value::Bool(b),
        C::Null => Value::Null,
        // Tag 1: epoch seconds, which is how JSON 1.0 writes a timestamp.
        C::Tag(_, inner) => to_json(*inner),
        C::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        C::Map(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(k) => Some((k, to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn cbor_reply(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    let h = r.headers_mut();
    h.insert("content-type", "application/cbor".parse().expect("header"));
    h.insert("smithy-protocol", "rpc-v2-cbor".parse().expect("header"));
    r
}

fn error_reply(model: &Model, status: u16, kind: &str, message: &str) -> Response<Body> {
    let mut out = Vec::new();
    model.encode(
        None,
        &serde_json::json!({"__type": kind, "message": message}),
        &mut out,
    );
    cbor_reply(status, out)
}

async fn handle(
    model: Arc<Model>,
    moto: String,
    client: Client<HttpConnector, Body>,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(op) = req.uri().path().strip_prefix(PREFIX).map(ToOwned::to_owned) else {
        return error_reply(&model, 404, "UnknownOperationException", req.uri().path());
    };
    let headers = req.headers().clone();
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return error_reply(&model, 400, "SerializationException", "unreadable body");
    };
    // The SDK gzips large PutMetricData bodies.
    let body = if headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"))
    {
        let mut raw = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .is_err()
        {
            return error_reply(&model, 400, "SerializationException", "bad gzip body");
        }
        Bytes::from(raw)
    } else {
        body
    };
    let json = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        match ciborium::from_reader::<ciborium::Value, _>(&body[..]) {
            Ok(v) => to_json(v),
            Err(e) => return error_reply(&model, 400, "SerializationException", &e.to_string()),
        }
    };
    let mut up = Request::post(format!("{moto}/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("{TARGET}.{op}"));
    // moto reads the region and account from the signature's scope.
    // The caller's identity and user agent too: the IAM evaluation tells
    // the product's calls from the harness's by the agent's app name.
    for h in [
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "user-agent",
        "x-amz-user-agent",
    ] {
        if let Some(v) = headers.get(h) {
            up = up.header(h, v);
        }
    }
    let Ok(up) = up.body(Full::new(Bytes::from(json.to_string()))) else {
        return error_reply(&model, 500, "InternalFailure", "request");
    };
    let (status, answer) = match client.request(up).await {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.into_body().collect().await {
                Ok(b) => (status, b.to_bytes()),
                Err(e) => return error_reply(&model, 502, "InternalFailure", &e.to_string()),
            }
        }
        Err(e) => return error_reply(&model, 502, "InternalFailure", &e.to_string()),
    };
    let parsed: Option<Value> = serde_json::from_slice(&answer).ok();
    match (status, parsed) {
        (200..=299, Some(v)) => {
            let mut out = Vec::new();
            model.encode(model.outputs.get(&op).map(String::as_str), &v, &mut out);
            cbor_reply(status, out)
        }
        (_, Some(v)) if v.get("__type").is_some() => {
            let kind = v["__type"].as_str().unwrap_or("InternalFailure");
            let message = v
                .get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            error_reply(&model, status, kind, message)
        }
        (s, _) => {
            let text = String::from_utf8_lossy(&answer);
            let head: String = text.chars().take(300).collect();
            error_reply(
                &model,
                if s < 400 { 500 } else { s },
                "InternalFailure",
                &format!("moto answered {op} with HTTP {s}: {head}"),
            )
        }
    }
}

/// The CloudWatch endpoint the SDK is pointed at; moto behind it.
pub struct CloudWatchBridge {
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl CloudWatchBridge {
    pub async fn start(moto: &str) -> Result<Self> {
        let model = Arc::new(Model::load()?);
        if !model.outputs.contains_key("GetMetricData") {
            bail!("botocore's CloudWatch model has no GetMetricData");
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let client: Client<HttpConnector, Body> =
            Client::builder(TokioExecutor::new()).build_http();
        let moto = moto.trim_end_matches('/').to_owned();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (model, moto, client) = (model.clone(), moto.clone(), client.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (model, moto, client) = (model.clone(), moto.clone(), client.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                handle(model, moto, client, req).await,
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { endpoint, task })
    }

    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(sdk)
                .endpoint_url(&self.endpoint)
                .build(),
        )
    }
}

impl Drop for CloudWatchBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}
