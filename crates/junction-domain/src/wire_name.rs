//! The wire names of unit enum variants, as serde spells them (`rename_all` and `rename`
//! included), so each enum names its variants once, in its serde attributes.

use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as DeError, StrDeserializer};
use serde::ser::{self, Impossible, Serialize};

/// The name serde gives `value`, a unit variant of a fieldless enum.
///
/// # Panics
/// If `value` is not a unit variant: a programming error, caught by the enum's own tests.
pub fn wire_name<T: Serialize>(value: &T) -> &'static str {
    value
        .serialize(NameOf)
        .unwrap_or_else(|_| panic!("wire_name is for fieldless enums"))
}

/// The variant serde reads from `name`, or `None` if `name` names none.
pub fn from_wire_name<'de, T: Deserialize<'de>>(name: &'de str) -> Option<T> {
    let de: StrDeserializer<'de, DeError> = name.into_deserializer();
    T::deserialize(de).ok()
}

/// Reads the variant name out of `serialize_unit_variant`; refuses everything else.
struct NameOf;

#[derive(Debug)]
struct NotAName;

impl std::fmt::Display for NotAName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit variant")
    }
}

impl std::error::Error for NotAName {}

impl ser::Error for NotAName {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotAName
    }
}

type No = Impossible<&'static str, NotAName>;

macro_rules! refuse {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<&'static str, NotAName> { Err(NotAName) })*
    };
}

impl ser::Serializer for NameOf {
    type Ok = &'static str;
    type Error = NotAName;
    type SerializeSeq = No;
    type SerializeTuple = No;
    type SerializeTupleStruct = No;
    type SerializeTupleVariant = No;
    type SerializeMap = No;
    type SerializeStruct = No;
    type SerializeStructVariant = No;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotAName> {
        Ok(variant)
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<&'static str, NotAName> {
        Err(NotAName)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAName> {
        Err(NotAName)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAName> {
        Err(NotAName)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<No, NotAName> {
        Err(NotAName)
    }
    fn serialize_tuple(self, _: usize) -> Result<No, NotAName> {
        Err(NotAName)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<No, NotAName> {
        Err(NotAName)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<No, NotAName> {
        Err(NotAName)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<No, NotAName> {
        Err(NotAName)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<No, NotAName> {
        Err(NotAName)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<No, NotAName> {
        Err(NotAName)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Colour {
        DeepRed,
        #[serde(rename = "blue!")]
        Blue,
    }

    #[test]
    fn names_are_serdes_both_ways() {
        assert_eq!(wire_name(&Colour::DeepRed), "deep_red");
        assert_eq!(wire_name(&Colour::Blue), "blue!");
        assert_eq!(from_wire_name::<Colour>("deep_red"), Some(Colour::DeepRed));
        assert_eq!(from_wire_name::<Colour>("blue!"), Some(Colour::Blue));
        assert_eq!(from_wire_name::<Colour>("DeepRed"), None);
        assert_eq!(from_wire_name::<Colour>(""), None);
    }

    /// Every closed set of the domain reads back what it writes, and no two variants share a
    /// name.
    #[test]
    fn every_domain_name_reads_back() {
        fn check<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
            all: &[T],
        ) {
            let names: std::collections::BTreeSet<&str> = all.iter().map(wire_name).collect();
            assert_eq!(names.len(), all.len(), "{all:?}");
            for x in all {
                assert_eq!(from_wire_name::<T>(wire_name(x)).as_ref(), Some(x));
            }
        }
        check(&crate::CaseStatus::ALL);
        check(&crate::DeliveryState::ALL);
        check(&crate::Role::ALL);
        check(&crate::Action::ALL);
        check(&crate::AgencyKind::ALL);
        check(&crate::Datatype::ALL);
        check(&crate::Classification::ALL);
        assert_eq!(wire_name(&crate::Action::ReadCases), "cases.read");
    }
}
