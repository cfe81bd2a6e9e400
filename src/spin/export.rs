//! The typed `hostnaming:naming/allocator` export: the WIT `generate` over the same
//! allocation as `POST /generate-name`, with the core's types converted to the WIT's.

use crate::core::allocate::{check_count, Allocation, NameRequest};
use crate::core::error::NamingError;
use crate::core::idempotency::IdempotencyKey;
use crate::core::validate::Tuple;
use crate::spin::settings::Config;

wit_bindgen::generate!({
    path: "wit",
    world: "hostnaming:naming/allocator-component",
    with: {
        "fermyon:spin/variables@2.0.0": spin_sdk::wit::v2::variables,
    },
});

use exports::hostnaming::naming::allocator as wit;

struct Component;

impl wit::Guest for Component {
    fn generate(request: wit::NameRequest) -> Result<wit::Allocation, wit::NamingError> {
        let result = (|| {
            let tuple = Tuple::parse(&request.application, &request.role, &request.environment)?;
            let count = check_count(Some(u64::from(request.count)))?;
            let key = request
                .idempotency_key
                .as_deref()
                .map(IdempotencyKey::parse)
                .transpose()?;
            let order = NameRequest {
                tuple: &tuple,
                count,
                key: key.as_ref(),
            };
            let config = Config::load()?;
            let mut env = config.env();
            spin_sdk::http::run(super::generate(&config, &mut env, order))
        })();
        result.map(Into::into).map_err(Into::into)
    }
}

export!(Component);

impl From<Allocation> for wit::Allocation {
    fn from(allocation: Allocation) -> Self {
        Self {
            names: allocation
                .names
                .into_iter()
                .map(|n| wit::IssuedName {
                    hostname: n.hostname,
                    number: n.number,
                })
                .collect(),
            replayed: allocation.replayed,
        }
    }
}

impl From<NamingError> for wit::NamingError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::InvalidInput(f) => Self::InvalidInput(wit::FieldError {
                field: f.field,
                reason: f.reason,
            }),
            NamingError::NameTooLong { length } => Self::NameTooLong(length as u32),
            NamingError::VaultUnavailable(m) => Self::VaultUnavailable(m),
            NamingError::VaultDenied(m) => Self::VaultDenied(m),
            NamingError::ContentionExhausted { attempts } => Self::ContentionExhausted(attempts),
            NamingError::Misconfigured(m) => Self::Misconfigured(m),
            NamingError::IdempotencyMismatch => Self::IdempotencyKeyReused,
            NamingError::InFlight => Self::InFlight,
            // `generate` never looks a name up.
            NamingError::NotFound(m) => Self::VaultUnavailable(m),
        }
    }
}
