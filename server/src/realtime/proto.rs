//! LeanCloud's realtime schema (`proto/message.proto` of `leancloud-realtime@4.3.1`, package
//! `push_server.messages2`, proto2) as `prost` messages: the commands and fields this server reads or
//! writes, with the schema's own tags. proto2 presence throughout (`Option`), so that `cmd = session`
//! (enum value 0) is put on the wire (`08 00`); a frame without it would be a push the SDK cannot route.
//! Fields not listed here are skipped when decoding, as protobuf does with unknown fields.

#![allow(missing_docs)]

/// `CommandType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CommandType {
    Session = 0,
    Conv = 1,
    Direct = 2,
    Ack = 3,
    Rcp = 4,
    Unread = 5,
    Logs = 6,
    Error = 7,
    Read = 11,
    Presence = 12,
    Report = 13,
    Echo = 14,
    Patch = 18,
    Blacklist = 20,
    Goaway = 21,
}

/// `OpType` (the values this server uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum OpType {
    Open = 1,
    Add = 2,
    Remove = 3,
    Close = 4,
    Opened = 5,
    Closed = 6,
    Query = 7,
    QueryResult = 8,
    Added = 10,
    Removed = 11,
    Refresh = 12,
    Refreshed = 13,
    Start = 30,
    Started = 31,
    Joined = 32,
    MembersJoined = 33,
    Left = 39,
    MembersLeft = 40,
    Results = 42,
    Count = 43,
    Result = 44,
    Update = 45,
    Updated = 46,
    Mute = 47,
    Unmute = 48,
    MaxRead = 51,
    MemberInfoUpdate = 53,
    MemberInfoUpdated = 54,
    MemberInfoChanged = 55,
    Upload = 100,
    Uploaded = 101,
    Modify = 150,
    Modified = 151,
    Block = 170,
    Unblock = 171,
    Blocked = 172,
    Unblocked = 173,
    MembersBlocked = 174,
    MembersUnblocked = 175,
    AddShutup = 180,
    RemoveShutup = 181,
    QueryShutup = 182,
    ShutupAdded = 183,
    ShutupRemoved = 184,
    ShutupResult = 185,
    Shutuped = 186,
    Unshutuped = 187,
    MembersShutuped = 188,
    MembersUnshutuped = 189,
}

/// A member's role in a conversation (`member_info_update`, `member_info_changed`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConvMemberInfo {
    #[prost(string, optional, tag = "1")]
    pub pid: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub role: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub info_id: Option<String>,
}

/// `report/upload`: the iOS SDKs report a new device token (`type: "token"`, `data`: the hex token).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReportCommand {
    #[prost(bool, optional, tag = "1")]
    pub initiative: Option<bool>,
    #[prost(string, optional, tag = "2")]
    pub r#type: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub data: Option<String>,
}

/// `blacklist` `block` / `unblock` / `query` and their replies and pushes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlacklistCommand {
    #[prost(string, optional, tag = "1")]
    pub src_cid: Option<String>,
    #[prost(string, repeated, tag = "2")]
    pub to_pids: Vec<String>,
    #[prost(string, optional, tag = "3")]
    pub src_pid: Option<String>,
    #[prost(string, repeated, tag = "4")]
    pub to_cids: Vec<String>,
    #[prost(int32, optional, tag = "5")]
    pub limit: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub next: Option<String>,
    #[prost(string, repeated, tag = "8")]
    pub blocked_pids: Vec<String>,
    #[prost(string, repeated, tag = "9")]
    pub blocked_cids: Vec<String>,
    #[prost(string, repeated, tag = "10")]
    pub allowed_pids: Vec<String>,
    #[prost(message, repeated, tag = "11")]
    pub failed_pids: Vec<ErrorCommand>,
    #[prost(int64, optional, tag = "12")]
    pub t: Option<i64>,
    #[prost(string, optional, tag = "13")]
    pub n: Option<String>,
    #[prost(string, optional, tag = "14")]
    pub s: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct JsonObjectMessage {
    #[prost(string, required, tag = "1")]
    pub data: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionCommand {
    #[prost(int64, optional, tag = "1")]
    pub t: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub n: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub s: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub ua: Option<String>,
    #[prost(bool, optional, tag = "5")]
    pub r: Option<bool>,
    #[prost(string, optional, tag = "6")]
    pub tag: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub device_id: Option<String>,
    #[prost(string, repeated, tag = "8")]
    pub session_peer_ids: Vec<String>,
    #[prost(string, repeated, tag = "9")]
    pub online_session_peer_ids: Vec<String>,
    #[prost(string, optional, tag = "10")]
    pub st: Option<String>,
    #[prost(int32, optional, tag = "11")]
    pub st_ttl: Option<i32>,
    #[prost(int32, optional, tag = "12")]
    pub code: Option<i32>,
    #[prost(string, optional, tag = "13")]
    pub reason: Option<String>,
    /// The iOS SDKs' APNs device token (hex), at `session/open`.
    #[prost(string, optional, tag = "14")]
    pub device_token: Option<String>,
    #[prost(string, optional, tag = "16")]
    pub detail: Option<String>,
    #[prost(int64, optional, tag = "17")]
    pub last_unread_notif_time: Option<i64>,
    #[prost(int64, optional, tag = "18")]
    pub last_patch_time: Option<i64>,
    #[prost(int64, optional, tag = "19")]
    pub config_bitmap: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorCommand {
    #[prost(int32, required, tag = "1")]
    pub code: i32,
    #[prost(string, required, tag = "2")]
    pub reason: String,
    #[prost(int32, optional, tag = "3")]
    pub app_code: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub detail: Option<String>,
    #[prost(string, repeated, tag = "5")]
    pub pids: Vec<String>,
    #[prost(string, optional, tag = "6")]
    pub app_msg: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DirectCommand {
    #[prost(string, optional, tag = "1")]
    pub msg: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub from_peer_id: Option<String>,
    #[prost(int64, optional, tag = "4")]
    pub timestamp: Option<i64>,
    #[prost(bool, optional, tag = "5")]
    pub offline: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    pub has_more: Option<bool>,
    #[prost(bool, optional, tag = "10")]
    pub r: Option<bool>,
    #[prost(string, optional, tag = "11")]
    pub cid: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub id: Option<String>,
    #[prost(bool, optional, tag = "13")]
    pub transient: Option<bool>,
    #[prost(string, optional, tag = "14")]
    pub dt: Option<String>,
    #[prost(string, optional, tag = "16")]
    pub push_data: Option<String>,
    #[prost(bool, optional, tag = "17")]
    pub will: Option<bool>,
    #[prost(int64, optional, tag = "18")]
    pub patch_timestamp: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "19")]
    pub binary_msg: Option<Vec<u8>>,
    #[prost(string, repeated, tag = "20")]
    pub mention_pids: Vec<String>,
    #[prost(bool, optional, tag = "21")]
    pub mention_all: Option<bool>,
    #[prost(int32, optional, tag = "22")]
    pub conv_type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AckCommand {
    #[prost(int32, optional, tag = "1")]
    pub code: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub reason: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub mid: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub cid: Option<String>,
    #[prost(int64, optional, tag = "5")]
    pub t: Option<i64>,
    #[prost(string, optional, tag = "6")]
    pub uid: Option<String>,
    #[prost(int64, optional, tag = "7")]
    pub fromts: Option<i64>,
    #[prost(int64, optional, tag = "8")]
    pub tots: Option<i64>,
    #[prost(string, repeated, tag = "10")]
    pub ids: Vec<String>,
    #[prost(int32, optional, tag = "11")]
    pub app_code: Option<i32>,
    #[prost(string, optional, tag = "12")]
    pub app_msg: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UnreadTuple {
    #[prost(string, required, tag = "1")]
    pub cid: String,
    #[prost(int32, required, tag = "2")]
    pub unread: i32,
    #[prost(string, optional, tag = "3")]
    pub mid: Option<String>,
    #[prost(int64, optional, tag = "4")]
    pub timestamp: Option<i64>,
    #[prost(string, optional, tag = "5")]
    pub from: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub data: Option<String>,
    #[prost(int64, optional, tag = "7")]
    pub patch_timestamp: Option<i64>,
    #[prost(bool, optional, tag = "8")]
    pub mentioned: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "9")]
    pub binary_msg: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "10")]
    pub conv_type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UnreadCommand {
    #[prost(message, repeated, tag = "1")]
    pub convs: Vec<UnreadTuple>,
    #[prost(int64, optional, tag = "2")]
    pub notif_time: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ConvCommand {
    #[prost(string, repeated, tag = "1")]
    pub m: Vec<String>,
    #[prost(bool, optional, tag = "2")]
    pub transient: Option<bool>,
    #[prost(bool, optional, tag = "3")]
    pub unique: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub cid: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub cdate: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub init_by: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub sort: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub limit: Option<i32>,
    #[prost(int32, optional, tag = "9")]
    pub skip: Option<i32>,
    #[prost(int32, optional, tag = "10")]
    pub flag: Option<i32>,
    #[prost(int32, optional, tag = "11")]
    pub count: Option<i32>,
    #[prost(string, optional, tag = "12")]
    pub udate: Option<String>,
    #[prost(int64, optional, tag = "13")]
    pub t: Option<i64>,
    #[prost(string, optional, tag = "14")]
    pub n: Option<String>,
    #[prost(string, optional, tag = "15")]
    pub s: Option<String>,
    #[prost(string, optional, tag = "19")]
    pub unique_id: Option<String>,
    #[prost(string, optional, tag = "20")]
    pub target_client_id: Option<String>,
    #[prost(int64, optional, tag = "21")]
    pub max_read_timestamp: Option<i64>,
    #[prost(int64, optional, tag = "22")]
    pub max_ack_timestamp: Option<i64>,
    #[prost(bool, optional, tag = "23")]
    pub query_all_members: Option<bool>,
    #[prost(message, repeated, tag = "24")]
    pub max_read_tuples: Vec<MaxReadTuple>,
    #[prost(message, optional, tag = "26")]
    pub info: Option<ConvMemberInfo>,
    #[prost(bool, optional, tag = "27")]
    pub temp_conv: Option<bool>,
    #[prost(int32, optional, tag = "28")]
    pub temp_conv_ttl: Option<i32>,
    #[prost(string, repeated, tag = "29")]
    pub temp_conv_ids: Vec<String>,
    #[prost(string, repeated, tag = "30")]
    pub allowed_pids: Vec<String>,
    #[prost(message, repeated, tag = "31")]
    pub failed_pids: Vec<ErrorCommand>,
    #[prost(string, optional, tag = "40")]
    pub next: Option<String>,
    #[prost(message, optional, tag = "100")]
    pub results: Option<JsonObjectMessage>,
    #[prost(message, optional, tag = "101")]
    pub r#where: Option<JsonObjectMessage>,
    #[prost(message, optional, tag = "103")]
    pub attr: Option<JsonObjectMessage>,
}

/// `LogsCommand.QueryDirection`; absent means `Old` (the schema's only default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum QueryDirection {
    Old = 1,
    New = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogItem {
    #[prost(string, optional, tag = "1")]
    pub from: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub data: Option<String>,
    #[prost(int64, optional, tag = "3")]
    pub timestamp: Option<i64>,
    #[prost(string, optional, tag = "4")]
    pub msg_id: Option<String>,
    #[prost(int64, optional, tag = "5")]
    pub ack_at: Option<i64>,
    #[prost(int64, optional, tag = "6")]
    pub read_at: Option<i64>,
    #[prost(int64, optional, tag = "7")]
    pub patch_timestamp: Option<i64>,
    #[prost(bool, optional, tag = "8")]
    pub mention_all: Option<bool>,
    #[prost(string, repeated, tag = "9")]
    pub mention_pids: Vec<String>,
    #[prost(bool, optional, tag = "10")]
    pub bin: Option<bool>,
    #[prost(int32, optional, tag = "11")]
    pub conv_type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogsCommand {
    #[prost(string, optional, tag = "1")]
    pub cid: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub l: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub limit: Option<i32>,
    #[prost(int64, optional, tag = "4")]
    pub t: Option<i64>,
    #[prost(int64, optional, tag = "5")]
    pub tt: Option<i64>,
    #[prost(string, optional, tag = "6")]
    pub tmid: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub mid: Option<String>,
    #[prost(enumeration = "QueryDirection", optional, tag = "10")]
    pub direction: Option<i32>,
    #[prost(bool, optional, tag = "11")]
    pub t_included: Option<bool>,
    #[prost(bool, optional, tag = "12")]
    pub tt_included: Option<bool>,
    #[prost(int32, optional, tag = "13")]
    pub lctype: Option<i32>,
    #[prost(message, repeated, tag = "105")]
    pub logs: Vec<LogItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RcpCommand {
    #[prost(string, optional, tag = "1")]
    pub id: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub cid: Option<String>,
    #[prost(int64, optional, tag = "3")]
    pub t: Option<i64>,
    #[prost(bool, optional, tag = "4")]
    pub read: Option<bool>,
    #[prost(string, optional, tag = "5")]
    pub from: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadTuple {
    #[prost(string, required, tag = "1")]
    pub cid: String,
    #[prost(int64, optional, tag = "2")]
    pub timestamp: Option<i64>,
    #[prost(string, optional, tag = "3")]
    pub mid: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MaxReadTuple {
    #[prost(string, optional, tag = "1")]
    pub pid: Option<String>,
    #[prost(int64, optional, tag = "2")]
    pub max_ack_timestamp: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub max_read_timestamp: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PatchItem {
    #[prost(string, optional, tag = "1")]
    pub cid: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub mid: Option<String>,
    #[prost(int64, optional, tag = "3")]
    pub timestamp: Option<i64>,
    #[prost(bool, optional, tag = "4")]
    pub recall: Option<bool>,
    #[prost(string, optional, tag = "5")]
    pub data: Option<String>,
    #[prost(int64, optional, tag = "6")]
    pub patch_timestamp: Option<i64>,
    #[prost(string, optional, tag = "7")]
    pub from: Option<String>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub binary_msg: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "9")]
    pub mention_all: Option<bool>,
    #[prost(string, repeated, tag = "10")]
    pub mention_pids: Vec<String>,
    #[prost(int64, optional, tag = "11")]
    pub patch_code: Option<i64>,
    #[prost(string, optional, tag = "12")]
    pub patch_reason: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PatchCommand {
    #[prost(message, repeated, tag = "1")]
    pub patches: Vec<PatchItem>,
    #[prost(int64, optional, tag = "2")]
    pub last_patch_time: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadCommand {
    #[prost(string, optional, tag = "1")]
    pub cid: Option<String>,
    #[prost(string, repeated, tag = "2")]
    pub cids: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub convs: Vec<ReadTuple>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GenericCommand {
    #[prost(enumeration = "CommandType", optional, tag = "1")]
    pub cmd: Option<i32>,
    #[prost(enumeration = "OpType", optional, tag = "2")]
    pub op: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub app_id: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub peer_id: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub i: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub installation_id: Option<String>,
    #[prost(int32, optional, tag = "7")]
    pub priority: Option<i32>,
    #[prost(int32, optional, tag = "8")]
    pub service: Option<i32>,
    #[prost(int64, optional, tag = "9")]
    pub server_ts: Option<i64>,
    #[prost(int32, optional, tag = "11")]
    pub notification_type: Option<i32>,
    #[prost(message, optional, tag = "102")]
    pub session_message: Option<SessionCommand>,
    #[prost(message, optional, tag = "103")]
    pub error_message: Option<ErrorCommand>,
    #[prost(message, optional, tag = "104")]
    pub direct_message: Option<DirectCommand>,
    #[prost(message, optional, tag = "105")]
    pub ack_message: Option<AckCommand>,
    #[prost(message, optional, tag = "106")]
    pub unread_message: Option<UnreadCommand>,
    #[prost(message, optional, tag = "107")]
    pub read_message: Option<ReadCommand>,
    #[prost(message, optional, tag = "108")]
    pub rcp_message: Option<RcpCommand>,
    #[prost(message, optional, tag = "109")]
    pub logs_message: Option<LogsCommand>,
    #[prost(message, optional, tag = "110")]
    pub conv_message: Option<ConvCommand>,
    #[prost(message, optional, tag = "113")]
    pub report_message: Option<ReportCommand>,
    #[prost(message, optional, tag = "114")]
    pub patch_message: Option<PatchCommand>,
    #[prost(message, optional, tag = "116")]
    pub blacklist_message: Option<BlacklistCommand>,
}

impl GenericCommand {
    /// A command of `cmd`/`op` with every other field unset.
    pub fn new(cmd: CommandType, op: Option<OpType>) -> GenericCommand {
        GenericCommand {
            cmd: Some(cmd as i32),
            op: op.map(|o| o as i32),
            ..Default::default()
        }
    }

    /// The command type, if it is one this server knows.
    pub fn command(&self) -> Option<CommandType> {
        self.cmd.and_then(|c| CommandType::try_from(c).ok())
    }

    pub fn operation(&self) -> Option<OpType> {
        self.op.and_then(|o| OpType::try_from(o).ok())
    }
}
