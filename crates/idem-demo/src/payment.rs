//! The payment domain: what a client may ask for, and what it gets back.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

/// The largest amount accepted.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_215_752_191, 23, 0, false, 2); // 999999999.99

/// A payment request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// More than zero, at most two decimals, rescaled to exactly two.
    pub amount: Decimal,
    /// An ISO 4217 code: three upper-case letters.
    pub currency: String,
    /// An e-mail address.
    pub recipient: String,
}

/// A payment as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    /// `pay_` and 32 hex digits.
    pub id: String,
    /// The exact amount, serialised as a decimal string (`"99.99"`).
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency: String,
    /// Who is paid.
    pub recipient: String,
    /// Always `succeeded` in this demo.
    pub status: String,
    /// The idempotency key the payment was made with.
    pub idempotency_key: String,
    /// When the payment was made, RFC 3339 in UTC.
    pub created_at: String,
}

/// One rejected field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name in the request body.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Why a request body is not a payment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The body is not JSON, or not a JSON object (`400`).
    Malformed(String),
    /// Fields are missing or invalid (`422`).
    Invalid(Vec<FieldError>),
}

impl NewPayment {
    /// Parses and validates a JSON body such as
    /// `{"amount": 99.99, "currency": "EUR", "recipient": "alice@example.com"}`.
    ///
    /// The amount may be a JSON number or a decimal string; either way it is
    /// read as an exact decimal.
    ///
    /// # Examples
    /// ```
    /// use idem_demo::payment::NewPayment;
    /// let p = NewPayment::parse(br#"{"amount": 99.99, "currency": "EUR", "recipient": "alice@example.com"}"#).unwrap();
    /// assert_eq!(p.amount.to_string(), "99.99");
    /// assert!(NewPayment::parse(br#"{"amount": 0, "currency": "EUR", "recipient": "a@b.c"}"#).is_err());
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, InputError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| InputError::Malformed(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(InputError::Malformed(
                "the body must be a JSON object".to_owned(),
            ));
        };
        let mut errors = Vec::new();
        let amount = field(&object, "amount", &mut errors, amount);
        let currency = field(&object, "currency", &mut errors, currency);
        let recipient = field(&object, "recipient", &mut errors, recipient);
        match (amount, currency, recipient) {
            (Some(amount), Some(currency), Some(recipient)) if errors.is_empty() => Ok(Self {
                amount,
                currency,
                recipient,
            }),
            _ => Err(InputError::Invalid(errors)),
        }
    }
}

fn field<T>(
    object: &Map<String, Value>,
    name: &'static str,
    errors: &mut Vec<FieldError>,
    check: fn(&Value) -> Result<T, String>,
) -> Option<T> {
    let result = match object.get(name) {
        None | Some(Value::Null) => Err("is required".to_owned()),
        Some(value) => check(value),
    };
    result
        .map_err(|message| {
            errors.push(FieldError {
                field: name,
                message,
            })
        })
        .ok()
}

fn amount(value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err("must be a number such as 99.99".to_owned()),
    };
    let amount = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("`{text}` is not a decimal number"))?
        .normalize();
    if amount <= Decimal::ZERO {
        return Err("must be greater than zero".to_owned());
    }
    if amount.scale() > 2 {
        return Err("must have at most two decimals".to_owned());
    }
    if amount > MAX_AMOUNT {
        return Err(format!("must be at most {MAX_AMOUNT}"));
    }
    let mut amount = amount;
    amount.rescale(2);
    Ok(amount)
}

fn currency(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) => {
            Ok(s.clone())
        }
        _ => Err("must be an ISO 4217 code of three upper-case letters, such as EUR".to_owned()),
    }
}

fn recipient(value: &Value) -> Result<String, String> {
    let Value::String(s) = value else {
        return Err("must be an e-mail address".to_owned());
    };
    let plausible = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if plausible {
        Ok(s.clone())
    } else {
        Err("must be an e-mail address such as alice@example.com".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(body: &str) -> Vec<&'static str> {
        match NewPayment::parse(body.as_bytes()) {
            Err(InputError::Invalid(errors)) => errors.iter().map(|e| e.field).collect(),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn exact_amounts() {
        for (input, shown) in [
            ("99.99", "99.99"),
            ("\"99.99\"", "99.99"),
            ("10", "10.00"),
            ("0.1", "0.10"),
            ("12345678.91", "12345678.91"),
            ("1e2", "100.00"),
            ("99.990", "99.99"),
        ] {
            let body =
                format!(r#"{{"amount": {input}, "currency": "EUR", "recipient": "a@b.io"}}"#);
            let p = NewPayment::parse(body.as_bytes()).unwrap();
            assert_eq!(p.amount.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok_rest = r#""currency": "EUR", "recipient": "a@b.io""#;
        for amount in ["0", "-1", "1.001", "\"abc\"", "true", "1e20", "null"] {
            assert_eq!(
                invalid(&format!(r#"{{"amount": {amount}, {ok_rest}}}"#)),
                ["amount"]
            );
        }
        for currency in ["\"eur\"", "\"EURO\"", "\"E1R\"", "12", "\"\""] {
            let body = format!(r#"{{"amount": 1, "currency": {currency}, "recipient": "a@b.io"}}"#);
            assert_eq!(invalid(&body), ["currency"], "{currency}");
        }
        for recipient in [
            "\"alice\"",
            "\"a@b\"",
            "\"a b@c.d\"",
            "\"@b.io\"",
            "\"a@@b.io\"",
            "3",
        ] {
            let body = format!(r#"{{"amount": 1, "currency": "EUR", "recipient": {recipient}}}"#);
            assert_eq!(invalid(&body), ["recipient"], "{recipient}");
        }
        assert_eq!(invalid("{}"), ["amount", "currency", "recipient"]);
    }

    #[test]
    fn the_largest_amount() {
        assert_eq!(MAX_AMOUNT.to_string(), "999999999.99");
        let body =
            |a: &str| format!(r#"{{"amount": {a}, "currency": "EUR", "recipient": "a@b.io"}}"#);
        assert!(NewPayment::parse(body("999999999.99").as_bytes()).is_ok());
        assert_eq!(invalid(&body("1000000000")), ["amount"]);
    }

    #[test]
    fn malformed_bodies() {
        for body in ["", "{", "[1]", "\"x\"", "nope"] {
            assert!(matches!(
                NewPayment::parse(body.as_bytes()),
                Err(InputError::Malformed(_))
            ));
        }
    }

    #[test]
    fn amounts_serialise_as_exact_strings() {
        let p = Payment {
            id: "pay_1".into(),
            amount: Decimal::from_str("99.99").unwrap(),
            currency: "EUR".into(),
            recipient: "a@b.io".into(),
            status: "succeeded".into(),
            idempotency_key: "k".into(),
            created_at: "t".into(),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["amount"], "99.99");
    }
}
