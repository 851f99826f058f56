//! A small HTTP/1.1 JSON client for spar's own server: one keep-alive connection per client,
//! used by `spar bench serve` and the tests. It speaks exactly what [`super::router`] answers
//! (bodies with `Content-Length`), not HTTP in general.

use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, writing or reading failed.
    #[error("talking to spar serve")]
    Io(#[from] std::io::Error),
    /// The answer was not the HTTP this client reads.
    #[error("unexpected answer from spar serve: {0}")]
    Protocol(String),
    /// The answer's body is not JSON.
    #[error("the answer of spar serve is not JSON")]
    Json(#[from] serde_json::Error),
}

/// One connection to a spar server.
pub struct Client {
    stream: BufReader<TcpStream>,
    token: String,
}

/// An answer: the status and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The JSON body, parsed; `Null` when the answer had none.
    pub body: Value,
}

impl Client {
    /// Connects to `addr`, sending `token` as the bearer token.
    pub async fn connect(addr: SocketAddr, token: &str) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::new(stream),
            token: token.to_owned(),
        })
    }

    /// Sends `method path` with `body` (JSON when given) and reads the answer.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: spar\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.token,
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Result<Answer, ClientError> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Protocol(format!("status line {line:?}")))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(ClientError::Protocol("the connection closed".into()));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value
                        .trim()
                        .parse()
                        .map_err(|_| ClientError::Protocol(format!("content-length {value:?}")))?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(ClientError::Protocol("chunked answers are not read".into()));
                }
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)?
        };
        Ok(Answer { status, body })
    }
}
