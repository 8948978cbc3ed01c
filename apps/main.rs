// A reference API (Rust's standard library only): health and metrics over plain HTTP/1.1.
use std::env;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn respond(mut stream: TcpStream) {
    let mut buffer = [0u8; 2048];
    let read = stream.read(&mut buffer).unwrap_or(0);
    let request = String::from_utf8_lossy(&buffer[..read]);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let service = env::var("SERVICE_NAME").unwrap_or_else(|_| "rust-api".to_string());
    let (status, kind, body) = match path {
        "/health" | "/health/" => ("200 OK", "application/json", "{\"status\":\"ok\"}".to_string()),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", "devstack_api_up 1\n".to_string()),
        "/" => ("200 OK", "application/json", format!("{{\"service\":\"{}\",\"backends\":{{}}}}", service)),
        _ => ("404 Not Found", "application/json", "{\"error\":\"not found\"}".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        status,
        kind,
        body.len(),
        body
    );
    let _ = stream.write_all(response.as_bytes());
}

fn main() {
    let port = env::var("HTTP_PORT").unwrap_or_else(|_| "8000".to_string());
    let host = env::var("HTTP_HOST").unwrap_or_else(|_| "0.0.0.0".to_string());
    let listener = TcpListener::bind(format!("{}:{}", host, port)).expect("cannot listen");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || respond(stream));
    }
}
