#pragma once
// Order-preserving bytes of a read-model field value, for the secondary
// index entries of a view (storage/readmodel_store.h). Byte order of two
// encodings equals the order the query language gives their values within
// one type (docs/contract.md, "Projection node": filters); different types
// sort in separate, tagged ranges, so a range scan on one type never meets
// another (values of different types are unordered there, and never match).
//
// Every encoding is self-delimiting (a string ends with 00 00 and escapes its
// own zero bytes as 00 FF), so the row key can follow it in the index key.
//
// Numbers (integers and floats are one type) are encoded as their double:
// integers beyond 2^53 may share an encoding with a neighbour. An index scan
// therefore uses inclusive bounds and the query re-checks every row it meets,
// so rounding can add a candidate but never lose one.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::storage::index_value {

enum tag : unsigned char { absent = 0x01, boolean = 0x02, number = 0x03, string = 0x04 };

// A missing field, null, an object or an array: first in any order.
std::string of_absent();

std::string of_bool(bool v);
std::string of_number(double v);
std::string of_string(std::string_view v);

// The first key after every encoding of the type (a range scan's upper bound).
std::string type_end(tag t);
// The first encoding of the type (a range scan's lower bound).
std::string type_begin(tag t);

// Length of the encoding at the start of `bytes`, or nullopt when it is not one.
std::optional<std::size_t> length_of(std::string_view bytes) noexcept;

}  // namespace esflow::storage::index_value
