//! The NetConnection `connect` command.

use bytes::BytesMut;

use super::args::Args;
use super::name::{NameField, NamePolicy, StreamName};
use super::CommandError;
use crate::protocol::rtmp::amf0::{encode, Amf0Error, Amf0Value};

/// A decoded `connect` request.
#[derive(Clone, Debug, PartialEq)]
pub struct Connect {
    /// Transaction id (1 by convention).
    pub transaction_id: f64,
    /// The application, validated; the part of `app` before `?`.
    pub app: StreamName,
    /// `tcUrl`: the URL the client connected to.
    pub tc_url: Option<String>,
    /// `flashVer`: the client's identification, e.g. `FMLE/3.0`.
    pub flash_ver: Option<String>,
    /// `swfUrl`.
    pub swf_url: Option<String>,
    /// `pageUrl`.
    pub page_url: Option<String>,
    /// `objectEncoding`: 0 for AMF0, 3 for AMF3.
    pub object_encoding: f64,
    /// Enhanced RTMP `fourCcList`: codecs the client supports (`hvc1`, `av01`, ...).
    pub fourcc_list: Vec<String>,
    /// Other command-object properties (`type`, `capabilities`, `audioCodecs`, ...) in
    /// wire order.
    pub extra: Vec<(String, Amf0Value)>,
    /// Optional user arguments after the command object.
    pub args: Vec<Amf0Value>,
}

impl Connect {
    /// A connect request for `app` with the usual defaults (transaction 1, AMF0).
    pub fn new(app: StreamName, tc_url: impl Into<String>) -> Self {
        Connect {
            transaction_id: 1.0,
            app,
            tc_url: Some(tc_url.into()),
            flash_ver: None,
            swf_url: None,
            page_url: None,
            object_encoding: 0.0,
            fourcc_list: Vec::new(),
            extra: Vec::new(),
            args: Vec::new(),
        }
    }

    pub(super) fn decode(args: &Args<'_>, policy: &NamePolicy) -> Result<Self, CommandError> {
        let props = args
            .command_object()
            .properties()
            .ok_or(CommandError::InvalidArgument {
                command: "connect",
                argument: "command object",
                expected: "an object",
            })?;
        let mut app = None;
        let mut connect = Connect::new(
            StreamName {
                name: String::new(),
                query: None,
            },
            "",
        );
        connect.tc_url = None;
        connect.transaction_id = args.transaction_id();
        let string = |v: &Amf0Value, argument| {
            v.as_str()
                .map(str::to_owned)
                .ok_or(CommandError::InvalidArgument {
                    command: "connect",
                    argument,
                    expected: "a string",
                })
        };
        for (key, value) in props {
            match key.as_str() {
                "app" => {
                    let raw = string(value, "app")?;
                    app = Some(StreamName::parse(&raw, NameField::App, policy).map_err(
                        |source| CommandError::InvalidName {
                            field: NameField::App,
                            source,
                        },
                    )?);
                }
                "tcUrl" => connect.tc_url = Some(string(value, "tcUrl")?),
                "flashVer" | "flashver" => connect.flash_ver = Some(string(value, "flashVer")?),
                "swfUrl" => connect.swf_url = Some(string(value, "swfUrl")?),
                "pageUrl" => connect.page_url = Some(string(value, "pageUrl")?),
                "objectEncoding" => {
                    connect.object_encoding = value.as_number().unwrap_or(0.0);
                }
                "fourCcList" => {
                    if let Amf0Value::StrictArray(items) = value {
                        connect.fourcc_list = items
                            .iter()
                            .filter_map(Amf0Value::as_str)
                            .map(str::to_owned)
                            .collect();
                    }
                }
                _ => connect.extra.push((key.clone(), value.clone())),
            }
        }
        connect.app = app.ok_or(CommandError::MissingArgument {
            command: "connect",
            argument: "app",
        })?;
        connect.args = args.rest().to_vec();
        Ok(connect)
    }

    pub(super) fn encode(&self, out: &mut BytesMut) -> Result<(), Amf0Error> {
        encode::write_string(out, "connect")?;
        encode::write_number(out, self.transaction_id);
        let mut props: Vec<(&str, Amf0Value)> =
            vec![("app", Amf0Value::String(self.app.to_wire()))];
        let optional = [
            ("flashVer", &self.flash_ver),
            ("swfUrl", &self.swf_url),
            ("tcUrl", &self.tc_url),
            ("pageUrl", &self.page_url),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                props.push((key, Amf0Value::String(v.clone())));
            }
        }
        if !self.fourcc_list.is_empty() {
            let list = self
                .fourcc_list
                .iter()
                .cloned()
                .map(Amf0Value::String)
                .collect();
            props.push(("fourCcList", Amf0Value::StrictArray(list)));
        }
        props.push(("objectEncoding", Amf0Value::Number(self.object_encoding)));
        let extra = self.extra.iter().map(|(k, v)| (k.as_str(), v));
        encode::write_object(out, props.iter().map(|(k, v)| (*k, v)).chain(extra))?;
        for arg in &self.args {
            arg.encode(out)?;
        }
        Ok(())
    }
}
