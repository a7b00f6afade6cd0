// Umbrella header: everything public in portres.
#ifndef PORTRES_PORTRES_HPP
#define PORTRES_PORTRES_HPP

#include "portres/error.hpp"
#include "portres/types.hpp"

#endif
