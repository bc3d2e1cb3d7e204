//! The kinds of sensitive data the detectors know, their stable names, categories and default
//! severities.
//!
//! Names are part of the output (`finding.type`, endpoint labels, policy files): they are
//! snake_case and never change once shipped. Custom types from the policy file live beside the
//! built-in ones as [`TypeRef::Custom`], an index into the policy's list.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::findings::Severity;

/// What a kind of data is, for policies ("no secrets over plaintext") and for redaction modes
/// (`secrets` hides only [`Category::Secret`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Personal data: who someone is or how to reach them.
    Personal,
    /// Financial data: cards, bank accounts.
    Financial,
    /// Credentials: whoever holds one can act as its owner.
    Secret,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Personal => "personal",
            Category::Financial => "financial",
            Category::Secret => "secret",
        }
    }
}

/// A built-in kind of sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Email,
    Phone,
    Ssn,
    CardNumber,
    Iban,
    RoutingNumber,
    IpAddress,
    DateOfBirth,
    Passport,
    NationalId,
    AccountId,
    BasicAuth,
    BearerToken,
    Jwt,
    AwsAccessKey,
    GithubToken,
    GitlabToken,
    SlackToken,
    StripeKey,
    GoogleApiKey,
    PrivateKey,
    Password,
    /// A value in a field whose name says it is a secret (`api_key`, `client_secret`, `token`)
    /// and that no more specific detector recognised.
    SecretField,
    SessionCookie,
    UrlCredentials,
    SignedUrl,
}

impl DataType {
    /// Every built-in type, in a fixed order (benchmark tables, tests).
    pub const ALL: [DataType; 26] = [
        DataType::Email,
        DataType::Phone,
        DataType::Ssn,
        DataType::CardNumber,
        DataType::Iban,
        DataType::RoutingNumber,
        DataType::IpAddress,
        DataType::DateOfBirth,
        DataType::Passport,
        DataType::NationalId,
        DataType::AccountId,
        DataType::BasicAuth,
        DataType::BearerToken,
        DataType::Jwt,
        DataType::AwsAccessKey,
        DataType::GithubToken,
        DataType::GitlabToken,
        DataType::SlackToken,
        DataType::StripeKey,
        DataType::GoogleApiKey,
        DataType::PrivateKey,
        DataType::Password,
        DataType::SecretField,
        DataType::SessionCookie,
        DataType::UrlCredentials,
        DataType::SignedUrl,
    ];

    /// The stable name used in findings, labels and policy files.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Email => "email",
            DataType::Phone => "phone",
            DataType::Ssn => "ssn",
            DataType::CardNumber => "card_number",
            DataType::Iban => "iban",
            DataType::RoutingNumber => "routing_number",
            DataType::IpAddress => "ip_address",
            DataType::DateOfBirth => "date_of_birth",
            DataType::Passport => "passport",
            DataType::NationalId => "national_id",
            DataType::AccountId => "account_id",
            DataType::BasicAuth => "basic_auth",
            DataType::BearerToken => "bearer_token",
            DataType::Jwt => "jwt",
            DataType::AwsAccessKey => "aws_access_key",
            DataType::GithubToken => "github_token",
            DataType::GitlabToken => "gitlab_token",
            DataType::SlackToken => "slack_token",
            DataType::StripeKey => "stripe_key",
            DataType::GoogleApiKey => "google_api_key",
            DataType::PrivateKey => "private_key",
            DataType::Password => "password",
            DataType::SecretField => "secret_field",
            DataType::SessionCookie => "session_cookie",
            DataType::UrlCredentials => "url_credentials",
            DataType::SignedUrl => "signed_url",
        }
    }

    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn category(self) -> Category {
        match self {
            DataType::Email
            | DataType::Phone
            | DataType::Ssn
            | DataType::IpAddress
            | DataType::DateOfBirth
            | DataType::Passport
            | DataType::NationalId => Category::Personal,
            DataType::CardNumber
            | DataType::Iban
            | DataType::RoutingNumber
            | DataType::AccountId => Category::Financial,
            DataType::BasicAuth
            | DataType::BearerToken
            | DataType::Jwt
            | DataType::AwsAccessKey
            | DataType::GithubToken
            | DataType::GitlabToken
            | DataType::SlackToken
            | DataType::StripeKey
            | DataType::GoogleApiKey
            | DataType::PrivateKey
            | DataType::Password
            | DataType::SecretField
            | DataType::SessionCookie
            | DataType::UrlCredentials
            | DataType::SignedUrl => Category::Secret,
        }
    }

    /// Severity of a finding when no policy rule says otherwise: how much harm one leaked
    /// value does. Data an API is expected to carry (emails, addresses) is informational until
    /// a policy says it should not be there; identity and payment numbers and credentials are
    /// worth a look wherever they are.
    pub fn default_severity(self) -> Severity {
        match self {
            DataType::Email | DataType::Phone | DataType::IpAddress | DataType::AccountId => {
                Severity::Info
            }
            DataType::DateOfBirth
            | DataType::RoutingNumber
            | DataType::SessionCookie
            | DataType::BearerToken
            | DataType::Jwt
            | DataType::BasicAuth
            | DataType::Password
            | DataType::SecretField => Severity::Low,
            DataType::Iban
            | DataType::Passport
            | DataType::NationalId
            | DataType::Ssn
            | DataType::CardNumber
            | DataType::AwsAccessKey
            | DataType::GithubToken
            | DataType::GitlabToken
            | DataType::SlackToken
            | DataType::StripeKey
            | DataType::GoogleApiKey
            | DataType::UrlCredentials
            | DataType::SignedUrl => Severity::Medium,
            DataType::PrivateKey => Severity::High,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A type as the scanner reports it: built in, or the policy's custom type at this index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TypeRef {
    Builtin(DataType),
    Custom(u16),
}

impl From<DataType> for TypeRef {
    fn from(data_type: DataType) -> TypeRef {
        TypeRef::Builtin(data_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<_> = DataType::ALL.iter().map(|t| t.name()).collect();
        for data_type in DataType::ALL {
            assert_eq!(DataType::from_name(data_type.name()), Some(data_type));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DataType::ALL.len());
    }
}
