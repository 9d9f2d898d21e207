#ifndef HV_VERSION_H
#define HV_VERSION_H
#define HV_VERSION "0.2.0"
#define HV_VERSION_NUM 0x000200u /* major << 16 | minor << 8 | patch */
#endif
